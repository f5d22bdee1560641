#include "ingest/command_runner.h"

#include <gtest/gtest.h>

#include "ingest/fake_command_runner.h"
#include "ingest/qemu_img.h"

namespace vmvault::ingest {
namespace {

TEST(CleanQemuErrorTest, StripsPrefixesAndLimitsLines) {
  EXPECT_EQ(CleanQemuError("qemu-img: Could not open 'a': Could not open 'a': No such file\n"),
            "No such file");
  EXPECT_EQ(CleanQemuError("qemu-nbd: Failed to blk_new_open 'x': boom\n"),
            "Failed to blk_new_open 'x': boom");
  EXPECT_EQ(CleanQemuError("a\nb\n\nc\nd\ne\nf\n"), "a; b; c; d (and 2 more lines)");
  EXPECT_EQ(CleanQemuError(""), "");
}

TEST(CommandRunnerTest, FormatCommandQuotes) {
  EXPECT_EQ(FormatCommand({"qemu-img", "info", "/a b/it's"}), "qemu-img info '/a b/it'\\''s'");
}

TEST(FakeCommandRunnerTest, UnexpectedCommandIsNotFound) {
  FakeCommandRunner runner;
  runner.Expect({"a"}, 3, "out", "err");
  auto r = runner.Run({"a"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->stdout_text, "out");
  EXPECT_EQ(runner.Run({"b"}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(runner.calls().size(), 2u);
}

}  // namespace
}  // namespace vmvault::ingest
