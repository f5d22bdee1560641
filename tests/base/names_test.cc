#include "base/names.h"

#include <gtest/gtest.h>

namespace vmvault {
namespace {

TEST(NamesTest, AcceptsOrdinaryNames) {
  for (const char* n : {"web01", "db.example.com", "Win 11 (x64)", "ünïcødé-vm", "a_b+c@d"}) {
    EXPECT_TRUE(ValidateName(n, "VM name").ok()) << n;
  }
}

TEST(NamesTest, RejectsHostileNames) {
  const std::string cases[] = {"", ".", "..", "../etc", "a/b", "/abs", "new\nline", "tab\there",
                               std::string("nul\0x", 5), "\x7f", "bad\xff", ".hidden",
                               "-rf", std::string(200, 'x'), "\xc2\x85"};
  for (const auto& n : cases) {
    Status s = ValidateName(n, "VM name");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << Printable(n);
    EXPECT_NE(s.message().find("VM name"), std::string::npos);
  }
}

TEST(NamesTest, SanitizeAlwaysGivesAValidName) {
  const std::string cases[] = {"", ".", "..", "a/b", "new\nline", "bad\xff", "-x", ".x",
                               std::string(300, 'y'), "ok"};
  for (const auto& n : cases) {
    const std::string s = SanitizeName(n);
    EXPECT_TRUE(ValidateName(s, "name").ok()) << Printable(n) << " -> " << Printable(s);
  }
  EXPECT_EQ(SanitizeName("a/b"), "a_b");
  EXPECT_EQ(SanitizeName("ok"), "ok");
}

TEST(NamesTest, SanitizeCutsAtCharacterBoundaries) {
  std::string many_e_acute;
  for (int i = 0; i < 80; ++i) many_e_acute += "\xc3\xa9";  // 160 bytes of U+00E9
  const std::string s = SanitizeName(many_e_acute, kMaxDiskNameLength);
  EXPECT_LE(s.size(), kMaxDiskNameLength);
  EXPECT_EQ(s.size() % 2, 0u);
  EXPECT_TRUE(ValidateName(s, "name").ok());
  EXPECT_TRUE(ValidateName(s + ".part128.qcow2", "file name").ok());
}

TEST(NamesTest, PrintableEscapesControlBytes) {
  EXPECT_EQ(Printable("a\nb\xff"), "a\\x0ab\\xff");
}

}  // namespace
}  // namespace vmvault
