// mount.vmvault's translation of mount(8)'s arguments into `vmvault mount`.
#include "tools/mount_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmvault::tools {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Args = std::vector<std::string>;

TEST(MountOptionsTest, WhatMountPassesForAnFstabLine) {
  // mount(8) for `/srv/vmvault /mnt/b vmvault defaults,allow_other,_netdev,nofail,user 0 0`.
  auto call = ParseHelperArgs(
      {"/srv/vmvault", "/mnt/b", "-o", "rw,noexec,nosuid,nodev,allow_other,_netdev,nofail,user"});
  ASSERT_TRUE(call.ok()) << call.status().ToString();
  EXPECT_THAT(call->vmvault_args,
              ElementsAre("mount", "--repo", "/srv/vmvault", "--quiet", "--allow-other", "/mnt/b",
                          "-o", "noexec", "-o", "nosuid", "-o", "nodev"));
  // rw is what mount(8) adds for `defaults`: mounted read-only, and said so.
  ASSERT_EQ(call->notes.size(), 1u);
  EXPECT_THAT(call->notes[0], HasSubstr("read-only"));
  EXPECT_FALSE(call->fake);
}

TEST(MountOptionsTest, ValuesAndFlags) {
  auto call = ParseHelperArgs({"-v", "/r", "/m", "-o", "ro,uid=1000,gid=0,cache_size=256M",
                               "-t", "vmvault", "-oallow_other,x-systemd.automount,comment=x"});
  ASSERT_TRUE(call.ok()) << call.status().ToString();
  EXPECT_TRUE(call->verbose);
  EXPECT_TRUE(call->notes.empty());  // ro: nothing to say
  EXPECT_THAT(call->vmvault_args,
              ElementsAre("mount", "--repo", "/r", "--uid", "1000", "--gid", "0", "--cache-size",
                          "256M", "--allow-other", "/m"));
  auto root = ParseHelperArgs({"/r", "/m", "-fn", "-o", "uid=root,gid=root"});
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_TRUE(root->fake);
  EXPECT_THAT(root->vmvault_args,
              ElementsAre("mount", "--repo", "/r", "--quiet", "--uid", "0", "--gid", "0", "/m"));
}

TEST(MountOptionsTest, LayoutAndViews) {
  // A staging area for a tape tool in fstab: views separated by colons, since commas
  // separate the options.
  auto call = ParseHelperArgs({"/r", "/m", "-o", "ro,layout=staging,views=qcow2:part"});
  ASSERT_TRUE(call.ok()) << call.status().ToString();
  EXPECT_THAT(call->vmvault_args, ElementsAre("mount", "--repo", "/r", "--quiet", "--layout",
                                              "staging", "--views", "qcow2:part", "/m"));
}

TEST(MountOptionsTest, RefusesWhatItDoesNotKnow) {
  const std::pair<Args, const char*> bad[] = {
      {{"/r"}, "usage: mount.vmvault"},
      {{"/r", "/m", "/x"}, "usage: mount.vmvault"},
      {{"/r", "/m", "-o", "ro,compress=zstd"}, "unknown option 'compress=zstd'"},
      {{"/r", "/m", "-o", "allow_others"}, "unknown option 'allow_others'"},
      {{"/r", "/m", "-o", "cache_size=lots"}, "option cache_size=lots: 'lots' is not a size"},
      {{"/r", "/m", "-o", "cache_size="}, "option cache_size= has no value"},
      {{"/r", "/m", "-o", "layout=tier"}, "option layout=tier: unknown layout 'tier'"},
      {{"/r", "/m", "-o", "views=vdi"}, "option views=vdi: unknown view 'vdi'"},
      {{"/r", "/m", "-o", "views=vmdk"}, "the vmdk view needs the raw view too"},
      {{"/r", "/m", "-o", "uid=no-such-user-here"}, "no such user"},
      {{"/r", "/m", "-o"}, "option -o needs a value"},
      {{"/r", "/m", "-x"}, "unknown flag -x"},
      {{"/r", "/m", "-N", "/proc/1/ns/mnt"}, "-N"},
  };
  for (const auto& [args, message] : bad) {
    auto call = ParseHelperArgs(args);
    ASSERT_FALSE(call.ok()) << ::testing::PrintToString(args);
    EXPECT_EQ(call.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(call.status().message(), HasSubstr(message)) << ::testing::PrintToString(args);
  }
  // The message names what is known.
  EXPECT_THAT(ParseHelperArgs({"/r", "/m", "-o", "bogus"}).status().message(),
              HasSubstr("allow_other, uid=, gid=, cache_size="));
}

TEST(MountOptionsTest, SloppyIgnoresUnknownOptionsAloud) {
  auto call = ParseHelperArgs({"/r", "/m", "-s", "-o", "ro,compress=zstd"});
  ASSERT_TRUE(call.ok()) << call.status().ToString();
  EXPECT_THAT(call->notes, ElementsAre(HasSubstr("ignoring unknown option 'compress=zstd'")));
  EXPECT_THAT(call->vmvault_args, ElementsAre("mount", "--repo", "/r", "--quiet", "/m"));
}

}  // namespace
}  // namespace vmvault::tools
