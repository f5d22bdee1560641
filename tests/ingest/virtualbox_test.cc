// The VirtualBox settings readers (ingest/virtualbox.h): the fixtures in
// testdata/vbox (written after VirtualBox-settings.xsd), malformed settings, finding
// machines in folders.
#include "ingest/virtualbox.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/file_util.h"
#include "base/names.h"
#include "tests/temp_dir.h"

namespace vmvault::ingest {
namespace {

namespace fs = std::filesystem;
using vmvault::testing::TempDir;

const std::string kFixtures = std::string(VV_SOURCE_DIR) + "/tests/ingest/testdata/vbox";
const char kWebUuid[] = "1b0d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
const char kDbUuid[] = "2c1e3d4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

std::string Fixture(const std::string& rel) {
  auto text = ReadFile(kFixtures + "/" + rel);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

void WriteText(const std::string& path, std::string_view text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// A minimal machine around `body` (children of <Machine>).
std::string Machine(const std::string& body, const std::string& version = "1.19-linux") {
  return fmt::format(R"(<?xml version="1.0"?>
<VirtualBox xmlns="http://www.virtualbox.org/" version="{}">
  <Machine uuid="{{aaaaaaaa-0000-4000-8000-000000000001}}" name="m" OSType="Other">
{}
  </Machine>
</VirtualBox>
)",
                     version, body);
}

std::string Attach(const std::string& controller, const std::string& uuid, int port = 0) {
  return fmt::format(R"(<Hardware><StorageControllers>
  <StorageController name="{}" type="AHCI" PortCount="4">
    <AttachedDevice type="HardDisk" port="{}" device="0"><Image uuid="{{{}}}"/></AttachedDevice>
  </StorageController></StorageControllers></Hardware>)",
                     controller, port, uuid);
}

std::string Registry(const std::string& disks) {
  return "<MediaRegistry><HardDisks>" + disks + "</HardDisks></MediaRegistry>";
}

constexpr char kU1[] = "bbbbbbbb-0000-4000-8000-000000000001";
constexpr char kU2[] = "bbbbbbbb-0000-4000-8000-000000000002";

TEST(VboxUuidTest, Normalizes) {
  EXPECT_EQ(*NormalizeVboxUuid("{1B0D2C3E-4F5A-4B6C-8D7E-9F0A1B2C3D4E}"), kWebUuid);
  EXPECT_EQ(*NormalizeVboxUuid("1b0d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"), kWebUuid);
  for (const char* bad :
       {"", "{}", "1b0d2c3e4f5a4b6c8d7e9f0a1b2c3d4e", "--help",
        "{1b0d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "1b0d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4g",
        "{00000000-0000-0000-0000-000000000000}"}) {
    EXPECT_EQ(NormalizeVboxUuid(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(VboxParseTest, ModernMachineWithSnapshots) {
  const std::string path = kFixtures + "/modern/VMs/web01/web01.vbox";
  const std::string text = Fixture("modern/VMs/web01/web01.vbox");
  auto m = ParseVboxMachine(text, path, nullptr);
  // The NVMe disk is registered by db01 only.
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("web01.vbox:"), std::string::npos) << m.status().ToString();
  EXPECT_NE(m.status().message().find("9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b61"), std::string::npos);
  EXPECT_NE(m.status().message().find("VirtualBox.xml"), std::string::npos);

  const std::string db_path = kFixtures + "/modern/VMs/db01/db01.vbox";
  auto db_registry = ParseVboxMediaRegistry(Fixture("modern/VMs/db01/db01.vbox"), db_path);
  ASSERT_TRUE(db_registry.ok()) << db_registry.status().ToString();
  EXPECT_EQ(db_registry->size(), 2u);
  m = ParseVboxMachine(text, path, &*db_registry);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->name, "web01");
  EXPECT_EQ(m->uuid, kWebUuid);
  EXPECT_EQ(m->vbox_path, path);
  EXPECT_EQ(m->config_text, text);

  const std::string dir = kFixtures + "/modern/VMs/web01/";
  ASSERT_EQ(m->disks.size(), 3u);  // the DVD and the empty floppy are skipped
  const VboxDisk& sys = m->disks[0];
  EXPECT_EQ(sys.name, "SATA-0-0");
  EXPECT_EQ(sys.controller, "SATA");
  EXPECT_EQ(sys.port, 0u);
  const std::vector<VboxDiskLayer> sys_chain = {
      {dir + "web01.vdi", "VDI", "6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a01"},
      {dir + "Snapshots/{6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a02}.vdi", "VDI",
       "6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a02"},
      {dir + "Snapshots/{6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a03}.vdi", "VDI",
       "6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a03"}};
  EXPECT_EQ(sys.chain, sys_chain);
  const VboxDisk& data = m->disks[1];
  EXPECT_EQ(data.name, "SATA-2-0");
  ASSERT_EQ(data.chain.size(), 2u);
  EXPECT_EQ(data.chain[0].path, dir + "data.vmdk");
  EXPECT_EQ(data.chain[0].format, "VMDK");
  EXPECT_EQ(data.chain[1].uuid, "6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a12");
  const VboxDisk& scratch = m->disks[2];
  EXPECT_EQ(scratch.name, "NVMe-0-0");
  ASSERT_EQ(scratch.chain.size(), 1u);
  EXPECT_EQ(scratch.chain[0].path, kFixtures + "/modern/VMs/shared/scratch.vdi");
}

TEST(VboxParseTest, LegacyMachineUsesTheGlobalRegistry) {
  const std::string xml_path = kFixtures + "/legacy/VirtualBox.xml";
  auto global = ParseVirtualBoxXml(Fixture("legacy/VirtualBox.xml"), xml_path);
  ASSERT_TRUE(global.ok()) << global.status().ToString();
  ASSERT_EQ(global->machines.size(), 1u);
  EXPECT_EQ(global->machines[0].uuid, "3d2f4e5a-6b7c-4d8e-9fa0-b1c2d3e4f5a6");
  EXPECT_EQ(global->machines[0].vbox_path, kFixtures + "/legacy/Machines/legacy/legacy.xml");
  EXPECT_EQ(global->media.size(), 2u);

  const std::string path = global->machines[0].vbox_path;
  auto m = ParseVboxMachine(Fixture("legacy/Machines/legacy/legacy.xml"), path, &global->media);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->name, "legacy");
  ASSERT_EQ(m->disks.size(), 1u);
  EXPECT_EQ(m->disks[0].name, "IDE Controller-0-0");
  ASSERT_EQ(m->disks[0].chain.size(), 2u);
  // Relative to the folder of VirtualBox.xml, which holds the registry.
  EXPECT_EQ(m->disks[0].chain[0].path, kFixtures + "/legacy/HardDisks/legacy.vdi");
  EXPECT_EQ(
      m->disks[0].chain[1].path,
      kFixtures + "/legacy/Machines/legacy/Snapshots/{3d2f4e5a-0000-4000-8000-000000000002}.vdi");
}

TEST(VboxParseTest, AbsoluteLocationsAndUnattachedMedia) {
  const std::string text = Machine(
      Registry(fmt::format(
          R"(<HardDisk uuid="{{{}}}" location="/srv/vm//disks/../a.vdi" format="VDI" type="Normal"/>
         <HardDisk uuid="{{{}}}" location="unused.vdi" format="VDI" type="Normal"/>)",
          kU1, kU2)) +
      Attach("SATA", kU1));
  auto m = ParseVboxMachine(text, "/x/m.vbox", nullptr);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->disks.size(), 1u);
  EXPECT_EQ(m->disks[0].chain[0].path, "/srv/vm/a.vdi");
}

TEST(VboxParseTest, DiskNamesAreSanitizedAndUnique) {
  std::string controllers;
  std::string disks;
  const std::vector<std::string> names = {"A/B", "A_B", "-x", std::string(150, 'n'),
                                          std::string(150, 'n')};
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string uuid = fmt::format("cccccccc-0000-4000-8000-{:012}", i + 1);
    disks += fmt::format(R"(<HardDisk uuid="{}" location="{}.vdi" format="VDI" type="Normal"/>)",
                         uuid, i);
    controllers += fmt::format(R"(<StorageController name="{}" type="AHCI" PortCount="1">
      <AttachedDevice type="HardDisk" port="0" device="0"><Image uuid="{}"/></AttachedDevice>
      </StorageController>)",
                               names[i], uuid);
  }
  auto m = ParseVboxMachine(
      Machine(Registry(disks) + "<StorageControllers>" + controllers + "</StorageControllers>",
              "1.11-linux"),
      "/x/m.vbox", nullptr);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->disks.size(), 5u);
  EXPECT_EQ(m->disks[0].name, "A_B-0-0");
  EXPECT_EQ(m->disks[1].name, "A_B-0-0~2");
  EXPECT_EQ(m->disks[2].name, "_x-0-0");
  EXPECT_EQ(m->disks[3].name, std::string(kMaxDiskNameLength, 'n'));
  EXPECT_EQ(m->disks[4].name, std::string(kMaxDiskNameLength - 2, 'n') + "~2");
  for (const VboxDisk& d : m->disks) EXPECT_TRUE(ValidateName(d.name, "disk").ok()) << d.name;
}

struct BadCase {
  std::string name;
  std::string text;
  StatusCode code;
  std::vector<std::string> words;  // each must appear in the message
};

std::vector<BadCase> BadCases() {
  const std::string reg1 = Registry(
      fmt::format(R"(<HardDisk uuid="{{{}}}" location="a.vdi" format="VDI" type="Normal"/>)", kU1));
  return {
      {"Empty", "", StatusCode::kInvalidArgument, {"/x/m.vbox:1:", "not well-formed"}},
      {"Truncated",
       Machine(reg1 + Attach("SATA", kU1)).substr(0, 200),
       StatusCode::kInvalidArgument,
       {"/x/m.vbox:", "not well-formed", "at byte"}},
      {"Garbage",
       "\x7f"
       "ELF\x01\x02",
       StatusCode::kInvalidArgument,
       {"not well-formed"}},
      {"WrongRoot",
       R"(<domain type="kvm"><name>x</name></domain>)",
       StatusCode::kInvalidArgument,
       {"<domain>", "not <VirtualBox>"}},
      {"WrongNamespace",
       R"(<VirtualBox xmlns="http://example.com/" version="1.19-linux"><Machine/></VirtualBox>)",
       StatusCode::kInvalidArgument,
       {"namespace", "http://example.com/"}},
      {"NoVersion",
       R"(<VirtualBox xmlns="http://www.virtualbox.org/"><Machine/></VirtualBox>)",
       StatusCode::kInvalidArgument,
       {"version"}},
      {"OldVersion",
       Machine(reg1, "1.6-windows"),
       StatusCode::kUnsupported,
       {"1.6-windows", "2.2"}},
      {"BadVersion", Machine(reg1, "one.two"), StatusCode::kInvalidArgument, {"one.two"}},
      {"GlobalFile",
       R"(<VirtualBox xmlns="http://www.virtualbox.org/" version="1.12-linux"><Global/></VirtualBox>)",
       StatusCode::kInvalidArgument,
       {"VirtualBox.xml"}},
      {"Encrypted",
       R"(<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">
            <MachineEncrypted uuid="{aaaaaaaa-0000-4000-8000-000000000001}" keyId="k" keyStore="s">AAAA</MachineEncrypted></VirtualBox>)",
       StatusCode::kUnsupported,
       {"encrypted"}},
      {"NoMachineUuid",
       R"(<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux"><Machine name="m"/></VirtualBox>)",
       StatusCode::kInvalidArgument,
       {":1:", "uuid"}},
      {"BadMachineUuid",
       R"(<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux"><Machine name="m" uuid="{x}"/></VirtualBox>)",
       StatusCode::kInvalidArgument,
       {"'{x}' is not a uuid"}},
      {"UnknownUuid",
       Machine(Attach("SATA", kU2)),
       StatusCode::kInvalidArgument,
       {"/x/m.vbox:", kU2, "own media registry"}},
      {"MissingPort",
       Machine(reg1 + fmt::format(R"(<StorageControllers><StorageController name="S">
          <AttachedDevice type="HardDisk" device="0"><Image uuid="{}"/></AttachedDevice>
          </StorageController></StorageControllers>)",
                                  kU1)),
       StatusCode::kInvalidArgument,
       {"port"}},
      {"BadDevice",
       Machine(reg1 + fmt::format(R"(<StorageControllers><StorageController name="S">
          <AttachedDevice type="HardDisk" port="0" device="-1"><Image uuid="{}"/></AttachedDevice>
          </StorageController></StorageControllers>)",
                                  kU1)),
       StatusCode::kInvalidArgument,
       {"device='-1'"}},
      {"NoImage",
       Machine(reg1 + R"(<StorageControllers><StorageController name="S">
          <AttachedDevice type="HardDisk" port="0" device="0"/>
          </StorageController></StorageControllers>)"),
       StatusCode::kInvalidArgument,
       {"<Image>"}},
      {"UnnamedController",
       Machine(reg1 +
               R"(<StorageControllers><StorageController type="AHCI"/></StorageControllers>)"),
       StatusCode::kInvalidArgument,
       {"name"}},
      {"NoLocation",
       Machine(Registry(fmt::format(R"(<HardDisk uuid="{}" format="VDI" type="Normal"/>)", kU1)) +
               Attach("SATA", kU1)),
       StatusCode::kInvalidArgument,
       {"location"}},
      {"NoFormat",
       Machine(Registry(fmt::format(R"(<HardDisk uuid="{}" location="a" type="Normal"/>)", kU1)) +
               Attach("SATA", kU1)),
       StatusCode::kInvalidArgument,
       {"format"}},
      {"DuplicateInRegistry",
       Machine(Registry(fmt::format(R"(<HardDisk uuid="{0}" location="a" format="VDI">
                                         <HardDisk uuid="{0}" location="b" format="VDI"/></HardDisk>)",
                                    kU1)) +
               Attach("SATA", kU1)),
       StatusCode::kInvalidArgument,
       {"listed twice"}},
      {"Iscsi",
       Machine(
           Registry(fmt::format(
               R"(<HardDisk uuid="{}" location="iscsi://nas/tgt/0" format="iSCSI" type="Normal"/>)",
               kU1)) +
           Attach("SATA", kU1)),
       StatusCode::kUnsupported,
       {"network medium"}},
  };
}

class VboxBadSettingsTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(VboxBadSettingsTest, IsAClearError) {
  const BadCase& c = GetParam();
  auto m = ParseVboxMachine(c.text, "/x/m.vbox", nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), c.code) << m.status().ToString();
  for (const std::string& w : c.words) {
    EXPECT_NE(m.status().message().find(w), std::string::npos)
        << "'" << w << "' not in: " << m.status().ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, VboxBadSettingsTest, ::testing::ValuesIn(BadCases()),
                         [](const auto& info) { return info.param.name; });

TEST(VboxParseTest, DeepNestingIsRefusedWithoutRecursion) {
  std::string disks;
  const int depth = 5000;
  for (int i = 0; i < depth; ++i) {
    disks += fmt::format(
        R"(<HardDisk uuid="dddddddd-0000-4000-8000-{:012}" location="{}.vdi" format="VDI">)", i + 1,
        i);
  }
  for (int i = 0; i < depth; ++i) disks += "</HardDisk>";
  auto m = ParseVboxMachine(Machine(Registry(disks)), "/x/m.vbox", nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("deeper than"), std::string::npos) << m.status().ToString();
}

TEST(VboxParseTest, ALoopThroughRegistriesIsAnError) {
  MediaRegistry extra;
  extra.AddFile("/y/other.vbox");
  ASSERT_TRUE(extra.Add({kU1, "/y/a.vdi", "VDI", kU2, "/y/other.vbox"}));
  ASSERT_TRUE(extra.Add({kU2, "/y/b.vdi", "VDI", kU1, "/y/other.vbox"}));
  EXPECT_FALSE(extra.Add({kU2, "/y/c.vdi", "VDI", "", "/y/other.vbox"}));
  auto m = ParseVboxMachine(Machine(Attach("SATA", kU1)), "/x/m.vbox", &extra);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("loops"), std::string::npos) << m.status().ToString();
}

TEST(VboxParseTest, OwnRegistryWinsOverExtra) {
  MediaRegistry extra;
  ASSERT_TRUE(extra.Add({kU1, "/elsewhere/a.vdi", "VDI", "", "/y/other.vbox"}));
  auto m = ParseVboxMachine(
      Machine(Registry(fmt::format(R"(<HardDisk uuid="{}" location="a.vdi" format="VDI"/>)", kU1)) +
              Attach("SATA", kU1)),
      "/x/m.vbox", &extra);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->disks[0].chain[0].path, "/x/a.vdi");
}

TEST(VboxParseTest, GlobalFileErrors) {
  auto g = ParseVirtualBoxXml(Fixture("modern/VMs/db01/db01.vbox"), "/x/VirtualBox.xml");
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("not the global"), std::string::npos);
  g = ParseVirtualBoxXml(R"(<VirtualBox xmlns="http://www.virtualbox.org/" version="1.12-linux">
    <Global><MachineRegistry>
      <MachineEntry uuid="{aaaaaaaa-0000-4000-8000-000000000001}" src="a/a.vbox"/>
      <MachineEntry uuid="{AAAAAAAA-0000-4000-8000-000000000001}" src="b/b.vbox"/>
    </MachineRegistry></Global></VirtualBox>)",
                         "/x/VirtualBox.xml");
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("/x/VirtualBox.xml:4:"), std::string::npos)
      << g.status().ToString();
  EXPECT_NE(g.status().message().find("registered twice"), std::string::npos);
}

// ---- FindVirtualBoxMachines ----

class VboxFindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::copy(kFixtures, dir_.path(), fs::copy_options::recursive);
    // The image files only need to exist.
    for (const char* f :
         {"modern/VMs/web01/web01.vdi", "modern/VMs/web01/data.vmdk",
          "modern/VMs/web01/Snapshots/{6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a02}.vdi",
          "modern/VMs/web01/Snapshots/{6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a03}.vdi",
          "modern/VMs/web01/Snapshots/{6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a12}.vmdk",
          "modern/VMs/db01/db01.vhd", "modern/VMs/shared/scratch.vdi",
          "legacy/HardDisks/legacy.vdi",
          "legacy/Machines/legacy/Snapshots/{3d2f4e5a-0000-4000-8000-000000000002}.vdi"}) {
      WriteText(dir_ / f, "");
    }
  }
  TempDir dir_;
};

TEST_F(VboxFindTest, FolderWithVirtualBoxXml) {
  auto ms = FindVirtualBoxMachines(dir_ / "modern");
  ASSERT_TRUE(ms.ok()) << ms.status().ToString();
  ASSERT_EQ(ms->size(), 2u);
  EXPECT_EQ((*ms)[0].uuid, kWebUuid);
  EXPECT_EQ((*ms)[0].vbox_path, dir_ / "modern/VMs/web01/web01.vbox");
  EXPECT_EQ((*ms)[0].disks.size(), 3u);
  EXPECT_EQ((*ms)[0].disks[2].chain[0].path, dir_ / "modern/VMs/shared/scratch.vdi");
  EXPECT_EQ((*ms)[1].uuid, kDbUuid);
  EXPECT_EQ((*ms)[1].name, "db 01");
  ASSERT_EQ((*ms)[1].disks.size(), 2u);
  EXPECT_EQ((*ms)[1].disks[0].name, "SCSI_LSI-0-0");
  EXPECT_EQ((*ms)[1].disks[1].name, "SCSI_LSI-0-0~2");
}

TEST_F(VboxFindTest, VirtualBoxXmlFileAndSingleVboxFile) {
  auto ms = FindVirtualBoxMachines(dir_ / "legacy/VirtualBox.xml");
  ASSERT_TRUE(ms.ok()) << ms.status().ToString();
  ASSERT_EQ(ms->size(), 1u);
  EXPECT_EQ((*ms)[0].name, "legacy");
  EXPECT_EQ((*ms)[0].disks[0].chain.size(), 2u);

  // A single .vbox file knows only its own registry.
  ms = FindVirtualBoxMachines(dir_ / "modern/VMs/web01/web01.vbox");
  EXPECT_EQ(ms.status().code(), StatusCode::kInvalidArgument);
  ms = FindVirtualBoxMachines(dir_ / "modern/VMs/db01/db01.vbox");
  ASSERT_TRUE(ms.ok()) << ms.status().ToString();
  ASSERT_EQ(ms->size(), 1u);
  EXPECT_EQ((*ms)[0].uuid, kDbUuid);
}

TEST_F(VboxFindTest, FolderWithoutVirtualBoxXmlPoolsRegistries) {
  fs::remove(dir_ / "modern/VirtualBox.xml");
  auto ms = FindVirtualBoxMachines(dir_ / "modern/VMs");
  ASSERT_TRUE(ms.ok()) << ms.status().ToString();
  ASSERT_EQ(ms->size(), 2u);
  EXPECT_EQ((*ms)[0].uuid, kDbUuid);  // by path: db01 before web01
  EXPECT_EQ((*ms)[1].uuid, kWebUuid);
  // Too deep to be found.
  WriteText(dir_ / "deep/a/b/c/d/e/x.vbox", Fixture("modern/VMs/db01/db01.vbox"));
  ms = FindVirtualBoxMachines(dir_ / "deep");
  ASSERT_TRUE(ms.ok()) << ms.status().ToString();
  EXPECT_TRUE(ms->empty());
}

TEST_F(VboxFindTest, SettingsBackupsAndCopies) {
  // VirtualBox's copy from a settings upgrade carries the same uuid: the real file wins.
  fs::copy_file(dir_ / "modern/VMs/db01/db01.vbox", dir_ / "modern/VMs/db01/db01-1.16-linux.vbox");
  fs::remove(dir_ / "modern/VirtualBox.xml");
  auto ms = FindVirtualBoxMachines(dir_ / "modern");
  ASSERT_TRUE(ms.ok()) << ms.status().ToString();
  ASSERT_EQ(ms->size(), 2u);
  EXPECT_EQ((*ms)[0].vbox_path, dir_ / "modern/VMs/db01/db01.vbox");
  // Two ordinary files with one uuid: which one is meant is unclear.
  fs::copy_file(dir_ / "modern/VMs/db01/db01.vbox", dir_ / "modern/VMs/db01/copy.vbox");
  ms = FindVirtualBoxMachines(dir_ / "modern");
  ASSERT_FALSE(ms.ok());
  EXPECT_NE(ms.status().message().find("both describe machine"), std::string::npos)
      << ms.status().ToString();
}

TEST_F(VboxFindTest, RegisteredFileWinsOverCopies) {
  fs::copy_file(dir_ / "modern/VMs/db01/db01.vbox", dir_ / "modern/VMs/db01/copy.vbox");
  auto ms = FindVirtualBoxMachines(dir_ / "modern");
  ASSERT_TRUE(ms.ok()) << ms.status().ToString();
  ASSERT_EQ(ms->size(), 2u);
  EXPECT_EQ((*ms)[1].vbox_path, dir_ / "modern/VMs/db01/db01.vbox");
}

TEST_F(VboxFindTest, MissingFilesAreNotFound) {
  fs::remove(dir_ / "modern/VMs/web01/Snapshots/{6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a02}.vdi");
  auto ms = FindVirtualBoxMachines(dir_ / "modern");
  ASSERT_FALSE(ms.ok());
  EXPECT_EQ(ms.status().code(), StatusCode::kNotFound);
  for (const char* w : {"web01", "SATA-0-0", "6f2c1a7e-0b1d-4c4e-9d1a-2f1e0c9b8a02"}) {
    EXPECT_NE(ms.status().message().find(w), std::string::npos) << ms.status().ToString();
  }

  fs::remove(dir_ / "legacy/Machines/legacy/legacy.xml");
  ms = FindVirtualBoxMachines(dir_ / "legacy");
  ASSERT_FALSE(ms.ok());
  EXPECT_EQ(ms.status().code(), StatusCode::kNotFound);
  EXPECT_NE(ms.status().message().find("registers machine"), std::string::npos)
      << ms.status().ToString();

  EXPECT_EQ(FindVirtualBoxMachines(dir_ / "nothing-here").status().code(), StatusCode::kNotFound);
}

TEST_F(VboxFindTest, RegisteredUuidMustMatch) {
  std::string xml = Fixture("modern/VirtualBox.xml");
  xml.replace(xml.find("VMs/db01/db01.vbox"), 18, "VMs/web01/web01.vbox");
  xml.replace(xml.find("VMs/web01/web01.vbox"), 20, "VMs/db01/db01.vbox");
  WriteText(dir_ / "modern/VirtualBox.xml", xml);
  auto ms = FindVirtualBoxMachines(dir_ / "modern/VirtualBox.xml");
  ASSERT_FALSE(ms.ok());
  EXPECT_NE(ms.status().message().find("describes machine"), std::string::npos)
      << ms.status().ToString();
}

TEST_F(VboxFindTest, AMalformedFileInTheFolderIsNamed) {
  WriteText(dir_ / "modern/VMs/broken/broken.vbox", "<VirtualBox><Machine");
  auto ms = FindVirtualBoxMachines(dir_ / "modern");
  ASSERT_FALSE(ms.ok());
  EXPECT_NE(ms.status().message().find("broken.vbox:1: not well-formed"), std::string::npos)
      << ms.status().ToString();
}

}  // namespace
}  // namespace vmvault::ingest
