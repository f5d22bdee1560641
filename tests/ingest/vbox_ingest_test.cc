// Which VirtualBox disk chains vbox_ingest can read (VboxChainFormat), and what it says
// about the others. Reading them is tested end to end in
// tests/integration/sources_test.cc.
#include "ingest/vbox_ingest.h"

#include <gtest/gtest.h>

namespace vmvault::ingest {
namespace {

VboxDisk Disk(std::vector<std::pair<std::string, std::string>> layers) {
  VboxDisk disk;
  disk.name = "SATA-0-0";
  disk.controller = "SATA";
  int n = 0;
  for (auto& [path, format] : layers) {
    disk.chain.push_back(
        {path, format, "bbbbbbbb-0000-4000-8000-00000000000" + std::to_string(++n)});
  }
  return disk;
}

TEST(VboxChainFormatTest, SingleImagesOfAnyFormat) {
  EXPECT_EQ(*VboxChainFormat(Disk({{"/vm/a.vdi", "VDI"}})), "vdi");
  EXPECT_EQ(*VboxChainFormat(Disk({{"/vm/a.vmdk", "VMDK"}})), "vmdk");
  EXPECT_EQ(*VboxChainFormat(Disk({{"/vm/a.vhd", "VHD"}})), "vpc");
  EXPECT_EQ(*VboxChainFormat(Disk({{"/vm/a.hdd", "Parallels"}})), "parallels");
}

TEST(VboxChainFormatTest, VdiAndVmdkChains) {
  EXPECT_EQ(*VboxChainFormat(Disk({{"/vm/a.vdi", "VDI"}, {"/vm/Snapshots/{1}.vdi", "vdi"}})),
            "vdi");
  EXPECT_EQ(*VboxChainFormat(Disk({{"/vm/a.vmdk", "VMDK"},
                                   {"/vm/Snapshots/{1}.vmdk", "VMDK"},
                                   {"/vm/Snapshots/{2}.vmdk", "vmdk"}})),
            "vmdk");
}

TEST(VboxChainFormatTest, MixedChainsNameTwoImagesAndTheirFormats) {
  auto r = VboxChainFormat(Disk({{"/vm/a.vmdk", "VMDK"},
                                 {"/vm/Snapshots/{1}.vmdk", "VMDK"},
                                 {"/vm/Snapshots/{2}.vdi", "VDI"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(r.status().message(),
            "disk SATA-0-0 is a snapshot chain of 3 images in more than one format "
            "('/vm/a.vmdk' is VMDK, '/vm/Snapshots/{2}.vdi' is VDI); vmvault reads a chain only "
            "when its images are all VDI or all VMDK");
}

TEST(VboxChainFormatTest, ChainsOfOtherFormatsAreRefused) {
  auto r = VboxChainFormat(Disk({{"/vm/a.vhd", "VHD"}, {"/vm/Snapshots/{1}.vhd", "VHD"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(r.status().message(),
            "disk SATA-0-0 is a snapshot chain of 2 VHD images ('/vm/Snapshots/{1}.vhd' on top); "
            "vmvault reads snapshot chains of VDI or VMDK images only");
  EXPECT_EQ(VboxChainFormat(Disk({})).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vmvault::ingest
