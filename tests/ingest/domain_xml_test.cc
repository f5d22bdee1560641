#include "ingest/domain_xml.h"

#include <functional>
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pugixml.hpp>

#include "tests/ingest/domain_xml_test_util.h"

namespace vmvault::ingest {
namespace {

using ::testing::HasSubstr;
using testing::kRunningDomainXml;
using testing::ValidationErrors;

// A shut-off domain as /etc/libvirt/qemu/NAME.xml holds it, header comment included.
constexpr char kInactiveXml[] = R"(<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST.
-->

<domain type='qemu'>
  <name>t1</name>
  <uuid>0f8fad5b-d9cb-469f-a165-70867728950e</uuid>
  <memory unit='KiB'>131072</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/vm/t1 &amp; &lt;co&gt; &apos;x&apos;.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='user'>
      <model type='virtio'/>
    </interface>
    <memballoon model='none'/>
  </devices>
</domain>
)";

// The domain XML with `from` replaced by `to` (which must occur).
std::string Edited(std::string xml, const std::string& from, const std::string& to) {
  const size_t at = xml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) xml.replace(at, from.size(), to);
  return xml;
}

DomainConfig Parsed(std::string_view xml) {
  auto d = ParseDomainXml(xml);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? *d : DomainConfig{};
}

TEST(DomainXmlTest, TestDomainIsValidLibvirtXml) {
  EXPECT_VALID_XML(kRunningDomainXml, "domain");
  EXPECT_VALID_XML(kInactiveXml, "domain");
  // The check can fail: a checkpoint name with a '/' is not valid.
  EXPECT_THAT(
      ValidationErrors("<domaincheckpoint><name>a/b</name></domaincheckpoint>", "domaincheckpoint"),
      HasSubstr("fails to validate"));
}

TEST(DomainXmlTest, ParsesRunningDomain) {
  const DomainConfig d = Parsed(kRunningDomainXml);
  EXPECT_EQ(d.name, "web01");
  EXPECT_EQ(d.uuid, "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
  EXPECT_EQ(d.type, "kvm");
  ASSERT_EQ(d.disks.size(), 5u);

  const DiskConfig& vda = d.disks[0];
  EXPECT_EQ(vda.type, "file");
  EXPECT_EQ(vda.device, "disk");
  EXPECT_EQ(vda.source_path, "/var/lib/libvirt/images/web01.qcow2");
  EXPECT_TRUE(vda.directly_readable);
  EXPECT_EQ(vda.driver_name, "qemu");
  EXPECT_EQ(vda.driver_type, "qcow2");
  EXPECT_EQ(vda.target_dev, "vda");
  EXPECT_EQ(vda.target_bus, "virtio");
  EXPECT_FALSE(vda.readonly);
  EXPECT_FALSE(vda.shareable);
  EXPECT_TRUE(vda.has_backing_chain);

  const DiskConfig& vdb = d.disks[1];
  EXPECT_EQ(vdb.type, "block");
  EXPECT_EQ(vdb.source_path, "/dev/vg0/web01-data");
  EXPECT_EQ(vdb.driver_type, "raw");
  EXPECT_TRUE(vdb.directly_readable);
  EXPECT_FALSE(vdb.has_backing_chain);  // <backingStore/> says "no backing file"

  const DiskConfig& sda = d.disks[2];
  EXPECT_EQ(sda.device, "cdrom");
  EXPECT_EQ(sda.target_bus, "sata");
  EXPECT_TRUE(sda.readonly);

  const DiskConfig& vdc = d.disks[3];
  EXPECT_EQ(vdc.source_path, "/srv/shared/tools.img");
  EXPECT_TRUE(vdc.readonly);
  EXPECT_TRUE(vdc.shareable);

  const DiskConfig& vdd = d.disks[4];
  EXPECT_EQ(vdd.type, "network");
  EXPECT_EQ(vdd.network_protocol, "rbd");
  EXPECT_EQ(vdd.network_name, "vms/web01-logs");
  EXPECT_EQ(vdd.source_path, "");
  EXPECT_FALSE(vdd.directly_readable);
  EXPECT_EQ(DescribeDisk(vdd), "vdd (network rbd 'vms/web01-logs')");
  EXPECT_EQ(DescribeDisk(vda), "vda (file '/var/lib/libvirt/images/web01.qcow2')");

  ASSERT_EQ(d.interfaces.size(), 2u);
  EXPECT_EQ(d.interfaces[0].type, "network");
  EXPECT_EQ(d.interfaces[0].mac, "52:54:00:6b:3c:58");
  EXPECT_EQ(d.interfaces[1].type, "bridge");
  EXPECT_EQ(d.interfaces[1].mac, "52:54:00:A0:11:7E");
}

TEST(DomainXmlTest, ParsesInactiveDomainWithEscapesAndDefaults) {
  const DomainConfig d = Parsed(kInactiveXml);
  EXPECT_EQ(d.name, "t1");
  EXPECT_EQ(d.type, "qemu");
  ASSERT_EQ(d.disks.size(), 2u);
  EXPECT_EQ(d.disks[0].source_path, "/var/lib/vm/t1 & <co> 'x'.qcow2");
  EXPECT_EQ(d.disks[1].type, "file");  // libvirt's default
  EXPECT_EQ(d.disks[1].source_path, "");
  EXPECT_EQ(DescribeDisk(d.disks[1]), "hdc (file, no media)");
  ASSERT_EQ(d.interfaces.size(), 1u);
  EXPECT_EQ(d.interfaces[0].mac, "");
}

TEST(DomainXmlTest, ParsesOtherSourceKinds) {
  const DomainConfig d = Parsed(R"(<domain type='kvm'><name>n</name><devices>
    <disk type='volume' device='disk'><source pool='default' volume='a.qcow2'/>
      <target dev='vda'/></disk>
    <disk><source file='/a.raw'><slices><slice type='storage' offset='1048576' size='4194304'/>
      </slices></source><target dev='vdb'/></disk>
    <disk type='dir' device='floppy'><source dir='/srv/floppy'/><target dev='fda'/></disk>
  </devices></domain>)");
  ASSERT_EQ(d.disks.size(), 3u);
  EXPECT_EQ(d.disks[0].volume_pool, "default");
  EXPECT_EQ(d.disks[0].volume_name, "a.qcow2");
  EXPECT_FALSE(d.disks[0].directly_readable);
  EXPECT_EQ(DescribeDisk(d.disks[0]), "vda (volume 'a.qcow2' of pool 'default')");
  EXPECT_EQ(d.disks[1].device, "disk");
  EXPECT_TRUE(d.disks[1].sliced);
  EXPECT_FALSE(d.disks[1].directly_readable);
  EXPECT_EQ(d.disks[2].source_path, "/srv/floppy");
  EXPECT_FALSE(d.disks[2].directly_readable);
}

TEST(DomainXmlTest, MalformedXmlNamesLineAndColumn) {
  auto d = ParseDomainXml("<domain type='kvm'>\n  <name>x</name>\n  <devices>\n  </device>\n");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(), HasSubstr("not well-formed"));
  EXPECT_THAT(d.status().message(), HasSubstr("line 4, column"));

  auto attr = ParseDomainXml("<domain>\n<name a='1>x</name></domain>");
  ASSERT_FALSE(attr.ok());
  EXPECT_THAT(attr.status().message(), HasSubstr("line 2"));

  EXPECT_THAT(ParseDomainXml("").status().message(), HasSubstr("not well-formed"));
  EXPECT_THAT(ParseDomainXml("<domain><name>a</name></domain><domain/>").status().message(),
              HasSubstr("2 top-level elements"));
}

TEST(DomainXmlTest, StructuralErrors) {
  EXPECT_THAT(ParseDomainXml("<network><name>a</name></network>").status().message(),
              HasSubstr("<network>, not a <domain>"));
  EXPECT_THAT(ParseDomainXml("<domain type='kvm'><uuid>x</uuid></domain>").status().message(),
              HasSubstr("no <name>"));
  EXPECT_THAT(ParseDomainXml("<domain><name></name></domain>").status().message(),
              HasSubstr("no <name>"));

  auto no_target =
      ParseDomainXml(Edited(kRunningDomainXml, "<target dev='vdb' bus='virtio'/>", ""));
  ASSERT_FALSE(no_target.ok());
  EXPECT_EQ(no_target.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_target.status().message(),
              HasSubstr("disk 2 ((no target) (block '/dev/vg0/web01-data')) has no <target dev"));

  auto dup = ParseDomainXml(Edited(kRunningDomainXml, "<target dev='vdc'", "<target dev='vda'"));
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.status().message(), HasSubstr("two disks use target 'vda'"));
}

TEST(DomainXmlTest, ErrorsPrintHostileStringsSafely) {
  auto d = ParseDomainXml(
      "<domain><name>a&#10;b\x01</name><devices><disk><target dev='x'/>"
      "</disk><disk><target dev='x'/></disk></devices></domain>");
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.status().message(), HasSubstr("domain 'a\\x0ab\\x01'"));
}

// A disk target becomes a file name in the mount and in the work folder: one that
// could name anything else is refused, whatever the hypervisor accepted.
TEST(DomainXmlTest, AHostileDiskTargetIsRefused) {
  for (const std::string& dev :
       {std::string("../../etc/x"), std::string("a/b"), std::string(".."), std::string(".x"),
        std::string("vd&#10;a"), std::string(101, 'v')}) {
    SCOPED_TRACE(dev);
    auto d = ParseDomainXml(Edited(kRunningDomainXml, "<target dev='vda'", "<target dev='" + dev + "'"));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(d.status().message(), HasSubstr("disk target"));
    EXPECT_EQ(d.status().message().find('\n'), std::string::npos);  // escaped, never raw
  }
}

// ---- ChooseDisks

std::vector<DiskChoice> Choose(const std::string& xml, DiskChoiceOptions options) {
  auto c = ChooseDisks(Parsed(xml), options);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : std::vector<DiskChoice>{};
}

// "vda+w vdb+w sda-cdrom": taken (+, w when writable) or skipped (-reason).
std::string Summary(const std::vector<DiskChoice>& choices) {
  std::string out;
  for (const DiskChoice& c : choices) {
    if (!out.empty()) out += ' ';
    out += c.target + (c.take ? "+" : "-" + c.skipped_because) + (c.writable ? "w" : "");
  }
  return out;
}

TEST(ChooseDisksTest, NetworkDiskIsAnErrorNamingIt) {
  auto c = ChooseDisks(Parsed(kRunningDomainXml), {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnsupported);
  EXPECT_THAT(c.status().message(), HasSubstr("disk vdd (network rbd 'vms/web01-logs')"));
}

TEST(ChooseDisksTest, DefaultTakesWritableFileAndBlockDisks) {
  EXPECT_EQ(Summary(Choose(kRunningDomainXml, {.skip_unreadable = true})),
            "vda+w vdb+w sda-cdrom vdc-read-only vdd-network diskw");
}

TEST(ChooseDisksTest, ReadonlyAndRemovableOnRequest) {
  EXPECT_EQ(Summary(Choose(kRunningDomainXml, {.include_readonly = true, .skip_unreadable = true})),
            "vda+w vdb+w sda-cdrom vdc+ vdd-network diskw");
  EXPECT_EQ(Summary(Choose(
                kRunningDomainXml,
                {.include_readonly = true, .include_removable = true, .skip_unreadable = true})),
            "vda+w vdb+w sda+ vdc+ vdd-network diskw");
  // An empty drive is never taken.
  EXPECT_EQ(Summary(Choose(kInactiveXml, {.include_readonly = true, .include_removable = true})),
            "vda+w hdc-no media");
}

TEST(ChooseDisksTest, NothingToBackUpIsAnError) {
  auto c = ChooseDisks(Parsed(R"(<domain><name>n</name><devices>
      <disk device='cdrom'><source file='/a.iso'/><target dev='hdc'/><readonly/></disk>
      <disk><source file='/b'/><target dev='vda'/><readonly/></disk>
      <disk type='volume'><source pool='p' volume='v'/><target dev='vdb'/></disk>
    </devices></domain>)"),
                       {.skip_unreadable = true});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(),
              HasSubstr("has no disk to back up (hdc: cdrom, vda: read-only, vdb: volume disk)"));
  EXPECT_THAT(ChooseDisks(Parsed("<domain><name>n</name></domain>"), {}).status().message(),
              HasSubstr("no disk to back up"));
}

TEST(ChooseDisksTest, SlicedFileIsNotReadableDirectly) {
  auto c = ChooseDisks(Parsed(R"(<domain><name>n</name><devices><disk><source file='/a'>
      <slices><slice type='storage' offset='0' size='512'/></slices></source>
      <target dev='vda'/></disk></devices></domain>)"),
                       {});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("the guest sees a slice of it"));
}

// ---- The backup, checkpoint and snapshot documents

std::vector<DiskChoice> WebChoices() {
  return Choose(kRunningDomainXml, {.include_readonly = true, .skip_unreadable = true});
}

// The element at `path` ("domainbackup/disks") of a document that must parse.
struct Doc {
  explicit Doc(const std::string& xml) {
    const pugi::xml_parse_result r = doc.load_string(xml.c_str());
    EXPECT_TRUE(r) << r.description() << "\n" << xml;
  }
  pugi::xml_node at(const char* path) const { return doc.first_element_by_path(path); }
  // name -> "attr=value ..." of every <disk> under `path`.
  std::map<std::string, std::string> Disks(const char* path, std::vector<const char*> attrs) {
    std::map<std::string, std::string> out;
    for (pugi::xml_node d : at(path).children("disk")) {
      std::string s;
      for (const char* a : attrs) {
        if (d.attribute(a))
          s += std::string(s.empty() ? "" : " ") + a + "=" + d.attribute(a).value();
      }
      out[d.attribute("name").value()] = s;
    }
    return out;
  }
  pugi::xml_document doc;
};

TEST(BackupXmlTest, FullBackup) {
  BackupSpec spec;
  spec.socket_path = "/run/vmvault/b1/backup.sock";
  spec.disks = WebChoices();
  spec.scratch_files = {{"vda", "/var/tmp/vmvault/scratch-vda.qcow2"},
                        {"vdb", "/var/tmp/vmvault/scratch-vdb.qcow2"}};
  auto xml = BackupXml(spec);
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  EXPECT_VALID_XML(*xml, "domainbackup");
  Doc doc(*xml);
  EXPECT_STREQ(doc.at("domainbackup").attribute("mode").value(), "pull");
  EXPECT_FALSE(doc.at("domainbackup/incremental"));
  EXPECT_STREQ(doc.at("domainbackup/server").attribute("transport").value(), "unix");
  EXPECT_STREQ(doc.at("domainbackup/server").attribute("socket").value(),
               "/run/vmvault/b1/backup.sock");
  EXPECT_EQ(doc.Disks("domainbackup/disks", {"backup", "type", "backupmode"}),
            (std::map<std::string, std::string>{{"vda", "backup=yes type=file"},
                                                {"vdb", "backup=yes type=file"},
                                                {"sda", "backup=no"},
                                                {"vdc", "backup=yes type=file"},
                                                {"vdd", "backup=no"}}));
  std::vector<std::string> scratch;
  for (pugi::xml_node d : doc.at("domainbackup/disks").children("disk")) {
    scratch.push_back(d.child("scratch").attribute("file").value());
  }
  EXPECT_EQ(scratch, (std::vector<std::string>{"/var/tmp/vmvault/scratch-vda.qcow2",
                                               "/var/tmp/vmvault/scratch-vdb.qcow2", "", "", ""}));
}

TEST(BackupXmlTest, IncrementalBackupCopiesDisksWithoutBitmapInFull) {
  BackupSpec spec;
  spec.socket_path = "/run/b.sock";
  spec.incremental = "vmvault-20240501T120000Z";
  spec.disks = WebChoices();
  spec.full_disks = {"vdb"};
  auto xml = BackupXml(spec);
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  EXPECT_VALID_XML(*xml, "domainbackup");
  Doc doc(*xml);
  EXPECT_STREQ(doc.at("domainbackup/incremental").child_value(), "vmvault-20240501T120000Z");
  EXPECT_EQ(doc.Disks("domainbackup/disks", {"backup", "backupmode"}),
            (std::map<std::string, std::string>{{"vda", "backup=yes"},
                                                {"vdb", "backup=yes backupmode=full"},
                                                {"sda", "backup=no"},
                                                {"vdc", "backup=yes backupmode=full"},
                                                {"vdd", "backup=no"}}));
}

TEST(BackupXmlTest, RefusesBadInput) {
  const std::vector<DiskChoice> disks = WebChoices();
  auto err = [&](const std::function<void(BackupSpec&)>& edit) {
    BackupSpec spec;
    spec.socket_path = "/run/b.sock";
    spec.disks = disks;
    edit(spec);
    auto xml = BackupXml(spec);
    EXPECT_FALSE(xml.ok());
    EXPECT_EQ(xml.status().code(), StatusCode::kInvalidArgument);
    return xml.status().message();
  };
  EXPECT_THAT(err([](auto& s) { s.socket_path = "run/b.sock"; }),
              HasSubstr("not an absolute path"));
  EXPECT_THAT(err([](auto& s) { s.socket_path = "/run/b\n.sock"; }),
              HasSubstr("control characters"));
  EXPECT_THAT(err([](auto& s) { s.incremental = "../cp"; }),
              HasSubstr("checkpoint name '../cp' may hold only"));
  EXPECT_THAT(err([](auto& s) {
                s.scratch_files = {{"sda", "/s"}};
              }),
              HasSubstr("scratch file given for disk 'sda', which is not taken"));
  EXPECT_THAT(err([](auto& s) {
                s.scratch_files = {{"vdz", "/s"}};
              }),
              HasSubstr("the domain does not have"));
  EXPECT_THAT(err([](auto& s) {
                s.scratch_files = {{"vda", "/s"}, {"vdb", "/s"}};
              }),
              HasSubstr("'/s' is given for two disks"));
  EXPECT_THAT(err([](auto& s) { s.full_disks = {"sda"}; }), HasSubstr("does not take"));
  EXPECT_THAT(err([](auto& s) {
                for (DiskChoice& d : s.disks) d.take = false;
              }),
              HasSubstr("takes no disk"));
  EXPECT_THAT(err([](auto& s) { s.disks.push_back(s.disks[0]); }),
              HasSubstr("'vda' is listed twice"));
}

TEST(CheckpointXmlTest, BitmapsForTakenWritableDisks) {
  auto xml = CheckpointXml("vmvault-20240501T120000Z", WebChoices());
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  EXPECT_VALID_XML(*xml, "domaincheckpoint");
  Doc doc(*xml);
  EXPECT_STREQ(doc.at("domaincheckpoint/name").child_value(), "vmvault-20240501T120000Z");
  EXPECT_EQ(doc.Disks("domaincheckpoint/disks", {"checkpoint"}),
            (std::map<std::string, std::string>{{"vda", "checkpoint=bitmap"},
                                                {"vdb", "checkpoint=bitmap"},
                                                {"sda", "checkpoint=no"},
                                                {"vdc", "checkpoint=no"},  // read-only
                                                {"vdd", "checkpoint=no"}}));
}

TEST(CheckpointXmlTest, RefusesNamesLibvirtRefuses) {
  for (const char* name : {"", ".hidden", "a/b", "a b", "cp<1>", "é"}) {
    auto xml = CheckpointXml(name, WebChoices());
    EXPECT_EQ(xml.status().code(), StatusCode::kInvalidArgument) << name;
  }
  EXPECT_TRUE(CheckpointXml("a.b-c_1", WebChoices()).ok());
  DiskChoice readonly;
  readonly.target = "vdc";
  readonly.take = true;
  const std::vector<DiskChoice> readonly_only = {readonly};
  EXPECT_THAT(CheckpointXml("cp", readonly_only).status().message(),
              HasSubstr("no disk the backup takes can have a checkpoint bitmap"));
}

TEST(SnapshotXmlTest, ExternalOverlaysForTakenWritableDisks) {
  auto xml = DiskOnlySnapshotXml("vmvault-s1", WebChoices(),
                                 {{"vda", "/var/tmp/vmvault/vda.overlay.qcow2"},
                                  {"vdb", "/var/tmp/vmvault/vdb.overlay.qcow2"}});
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  EXPECT_VALID_XML(*xml, "domainsnapshot");
  Doc doc(*xml);
  EXPECT_STREQ(doc.at("domainsnapshot/name").child_value(), "vmvault-s1");
  EXPECT_STREQ(doc.at("domainsnapshot/memory").attribute("snapshot").value(), "no");
  EXPECT_EQ(doc.Disks("domainsnapshot/disks", {"snapshot", "type"}),
            (std::map<std::string, std::string>{{"vda", "snapshot=external type=file"},
                                                {"vdb", "snapshot=external type=file"},
                                                {"sda", "snapshot=no"},
                                                {"vdc", "snapshot=no"},
                                                {"vdd", "snapshot=no"}}));
  pugi::xml_node vdb = doc.at("domainsnapshot/disks").find_child_by_attribute("name", "vdb");
  EXPECT_STREQ(vdb.child("source").attribute("file").value(), "/var/tmp/vmvault/vdb.overlay.qcow2");
  EXPECT_STREQ(vdb.child("driver").attribute("type").value(), "qcow2");
}

TEST(SnapshotXmlTest, RefusesMissingOrStrayOverlays) {
  EXPECT_THAT(DiskOnlySnapshotXml("s", WebChoices(), {{"vda", "/o"}}).status().message(),
              HasSubstr("no overlay file given for disk 'vdb'"));
  EXPECT_THAT(DiskOnlySnapshotXml("s", WebChoices(), {{"vda", "/o"}, {"vdb", "/p"}, {"vdc", "/q"}})
                  .status()
                  .message(),
              HasSubstr("overlay file given for disk 'vdc', which is not writable"));
  EXPECT_THAT(
      DiskOnlySnapshotXml("s", WebChoices(), {{"vda", "o"}, {"vdb", "/p"}}).status().message(),
      HasSubstr("not an absolute path"));
  EXPECT_EQ(
      DiskOnlySnapshotXml("a/b", WebChoices(), {{"vda", "/o"}, {"vdb", "/p"}}).status().code(),
      StatusCode::kInvalidArgument);
}

// Paths with every character XML treats specially come back as they went in, and the
// documents still validate.
TEST(DomainXmlEscapingTest, HostilePathsAreEscaped) {
  const std::string dir = "/tmp/it's \"quoted\" <b>&amp; </b> & more ]]> '";
  BackupSpec spec;
  spec.socket_path = dir + "/b.sock";
  spec.disks = WebChoices();
  spec.scratch_files = {{"vda", dir + "/vda<&>.qcow2"}};
  auto backup = BackupXml(spec);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_VALID_XML(*backup, "domainbackup");
  Doc b(*backup);
  EXPECT_EQ(std::string(b.at("domainbackup/server").attribute("socket").value()), dir + "/b.sock");
  EXPECT_EQ(std::string(b.at("domainbackup/disks/disk/scratch").attribute("file").value()),
            dir + "/vda<&>.qcow2");

  auto snap = DiskOnlySnapshotXml("s", WebChoices(),
                                  {{"vda", dir + "/a\".qcow2"}, {"vdb", dir + "/b'.qcow2"}});
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_VALID_XML(*snap, "domainsnapshot");
  Doc s(*snap);
  EXPECT_EQ(std::string(s.at("domainsnapshot/disks/disk/source").attribute("file").value()),
            dir + "/a\".qcow2");
}

TEST(DomainXmlEscapingTest, InvalidUtf8IsRefused) {
  BackupSpec spec;
  spec.socket_path = "/run/\xff.sock";
  spec.disks = WebChoices();
  auto xml = BackupXml(spec);
  ASSERT_FALSE(xml.ok());
  EXPECT_THAT(xml.status().message(), HasSubstr("'/run/\\xff.sock'"));
}

TEST(RandomTest, UuidsAndMacsHaveTheirFormat) {
  std::set<std::string> uuids, macs;
  for (int i = 0; i < 32; ++i) {
    auto uuid = NewUuid();
    ASSERT_TRUE(uuid.ok()) << uuid.status().ToString();
    EXPECT_THAT(*uuid, ::testing::MatchesRegex(
                           "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
    uuids.insert(*uuid);
    auto mac = RandomMac();
    ASSERT_TRUE(mac.ok()) << mac.status().ToString();
    EXPECT_THAT(*mac, ::testing::MatchesRegex("52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}"));
    macs.insert(*mac);
  }
  EXPECT_EQ(uuids.size(), 32u);
  EXPECT_GT(macs.size(), 28u);  // 24 random bits: a collision among 32 is very unlikely
}

}  // namespace
}  // namespace vmvault::ingest
