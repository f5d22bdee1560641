#include "base/status.h"

#include <cerrno>

#include <gtest/gtest.h>

#include "base/result.h"

namespace vmvault {
namespace {

TEST(StatusTest, MapsToRealErrnos) {
  EXPECT_EQ(Status::NotFound("x").ToErrno(), ENOENT);
  EXPECT_EQ(Status::ReadOnly("x").ToErrno(), EROFS);
  EXPECT_EQ(Status::Corruption("x").ToErrno(), EIO);
  EXPECT_EQ(Status::OK().ToErrno(), 0);
}

TEST(StatusTest, FromErrnoKeepsContextAndKind) {
  Status s = Status::FromErrno(ENOSPC, "write chunk");
  EXPECT_EQ(s.code(), StatusCode::kNoSpace);
  EXPECT_NE(s.message().find("write chunk"), std::string::npos);
  EXPECT_TRUE(Status::FromErrno(ENOENT, "open").IsNotFound());
  EXPECT_EQ(s.WithContext("ingest").message().rfind("ingest: ", 0), 0u);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  VV_ASSIGN_OR_RETURN(int h, Half(x));
  VV_ASSIGN_OR_RETURN(*out, Half(h));
  return Status::OK();
}

TEST(ResultTest, PropagatesErrors) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(Quarter(6, &out).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vmvault
