// RewriteDomainForRestore: the XML that defines a restored domain.

#include <functional>
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pugixml.hpp>

#include "ingest/domain_xml.h"
#include "tests/ingest/domain_xml_test_util.h"

namespace vmvault::ingest {
namespace {

using ::testing::HasSubstr;
using testing::kRunningDomainXml;
using testing::ValidationErrors;

constexpr char kNewUuid[] = "6a1c1e4f-8a0e-4b5e-9d8b-3c2f1e0d9c8b";

// Returns 0x000001, 0x000002, ... (or the given values first).
struct Counter {
  std::vector<uint32_t> first;
  size_t calls = 0;
  uint32_t operator()() {
    const size_t i = calls++;
    return i < first.size() ? first[i] : static_cast<uint32_t>(i + 1);
  }
};

RestoreRewrite WebRewrite() {
  RestoreRewrite r;
  r.name = "web01-restored";
  r.uuid = kNewUuid;
  r.disks = {{"vda", {"/srv/restore/web01-vda.qcow2", "qcow2"}},
             {"vdb", {"/srv/restore/web01-vdb.raw", "raw"}}};
  r.drop_unmapped_disks = true;  // vdd, the RBD disk the backup skipped
  r.random = Counter{};
  return r;
}

struct Rewritten {
  explicit Rewritten(const RestoreRewrite& r, std::string_view in = kRunningDomainXml) {
    auto out = RewriteDomainForRestore(in, r);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    if (!out.ok()) return;
    xml = *out;
    EXPECT_TRUE(doc.load_string(xml.c_str()));
    root = doc.document_element();
    devices = root.child("devices");
    auto parsed = ParseDomainXml(xml);
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    if (parsed.ok()) config = *parsed;
  }
  pugi::xml_node Disk(const char* target) const {
    for (pugi::xml_node d : devices.children("disk")) {
      if (std::string_view(d.child("target").attribute("dev").value()) == target) return d;
    }
    return {};
  }
  int Count(const char* name) {
    int n = 0;
    struct W : pugi::xml_tree_walker {
      const char* name;
      int* n;
      bool for_each(pugi::xml_node& node) override {
        if (std::string_view(node.name()) == name) ++*n;
        return true;
      }
    } w;
    w.name = name;
    w.n = &n;
    doc.traverse(w);
    return n;
  }
  std::string xml;
  pugi::xml_document doc;
  pugi::xml_node root, devices;
  DomainConfig config;
};

TEST(RestoreRewriteTest, ResultIsValidAndNamesTheNewDomain) {
  Rewritten out(WebRewrite());
  EXPECT_VALID_XML(out.xml, "domain");
  EXPECT_EQ(out.config.name, "web01-restored");
  EXPECT_EQ(out.config.uuid, kNewUuid);
  EXPECT_EQ(out.config.type, "kvm");
  EXPECT_FALSE(out.root.attribute("id"));
  EXPECT_STREQ(out.root.child("title").child_value(), "Web server");  // kept
  EXPECT_STREQ(out.root.first_element_by_path("sysinfo/system")
                   .find_child_by_attribute("entry", "name", "uuid")
                   .child_value(),
               kNewUuid);
  EXPECT_TRUE(out.root.child("genid"));
  EXPECT_STREQ(out.root.child("genid").child_value(), "");  // libvirt makes a new one
  EXPECT_EQ(out.xml.find("web01_VARS"), std::string::npos);
  EXPECT_STREQ(out.root.first_element_by_path("os/nvram").attribute("template").value(),
               "/usr/share/OVMF/OVMF_VARS_4M.fd");
}

TEST(RestoreRewriteTest, BackedUpDisksPointAtTheRestoredImages) {
  Rewritten out(WebRewrite());
  ASSERT_EQ(out.config.disks.size(), 4u);  // vdd dropped
  const DiskConfig& vda = out.config.disks[0];
  EXPECT_EQ(vda.target_dev, "vda");
  EXPECT_EQ(vda.type, "file");
  EXPECT_EQ(vda.source_path, "/srv/restore/web01-vda.qcow2");
  EXPECT_EQ(vda.driver_type, "qcow2");
  EXPECT_EQ(vda.driver_name, "qemu");
  EXPECT_FALSE(vda.has_backing_chain);
  EXPECT_FALSE(out.Disk("vda").child("backingStore"));
  EXPECT_STREQ(out.Disk("vda").child("driver").attribute("discard").value(), "unmap");
  EXPECT_STREQ(out.Disk("vda").child("address").attribute("bus").value(), "0x04");

  const DiskConfig& vdb = out.config.disks[1];  // was a block device
  EXPECT_EQ(vdb.type, "file");
  EXPECT_EQ(vdb.source_path, "/srv/restore/web01-vdb.raw");
  EXPECT_EQ(vdb.driver_type, "raw");
  EXPECT_FALSE(out.Disk("vdb").child("source").attribute("dev"));
  EXPECT_FALSE(out.Disk("vdb").child("backingStore"));

  // The cdrom and the read-only disk stay as they were (backingStore included).
  EXPECT_EQ(out.config.disks[2].source_path,
            "/var/lib/libvirt/images/debian-12.5.0-amd64-netinst.iso");
  EXPECT_TRUE(out.Disk("sda").child("backingStore"));
  EXPECT_EQ(out.config.disks[3].source_path, "/srv/shared/tools.img");
  EXPECT_TRUE(out.config.disks[3].readonly);
  EXPECT_TRUE(out.config.disks[3].shareable);
  EXPECT_STREQ(out.Disk("vdc").child("alias").attribute("name").value(), "ua-tools");
  EXPECT_FALSE(out.Disk("vdd"));
}

TEST(RestoreRewriteTest, InterfacesGetFreshMacs) {
  Rewritten out(WebRewrite());
  ASSERT_EQ(out.config.interfaces.size(), 2u);
  EXPECT_EQ(out.config.interfaces[0].mac, "52:54:00:00:00:01");
  EXPECT_EQ(out.config.interfaces[1].mac, "52:54:00:00:00:02");
  for (pugi::xml_node iface : out.devices.children("interface")) {
    EXPECT_FALSE(iface.child("target")) << "tap device of the old instance";
    EXPECT_FALSE(iface.child("source").attribute("portid"));
    EXPECT_TRUE(iface.child("model"));
    EXPECT_TRUE(iface.child("address"));
  }
  EXPECT_STREQ(out.devices.child("interface").child("source").attribute("network").value(),
               "default");
  EXPECT_FALSE(out.devices.child("interface").child("source").attribute("bridge"));
  pugi::xml_node bridge = out.devices.find_child_by_attribute("interface", "type", "bridge");
  EXPECT_STREQ(bridge.child("source").attribute("bridge").value(), "br0");
}

TEST(RestoreRewriteTest, NeverReusesAnOldMacOrOneTwice) {
  RestoreRewrite r = WebRewrite();
  // The first draw is the old MAC of net0, in another case in the old XML for net1
  // (52:54:00:A0:11:7E), then a repeat of the first new one.
  r.random = Counter{{0x6b3c58, 0xa0117e, 0x123456, 0x123456, 0xff000007}};
  Rewritten out(r);
  ASSERT_EQ(out.config.interfaces.size(), 2u);
  EXPECT_EQ(out.config.interfaces[0].mac, "52:54:00:12:34:56");
  EXPECT_EQ(out.config.interfaces[1].mac, "52:54:00:00:00:07");  // high bits ignored

  r.random = [] { return 0x424242u; };
  auto stuck = RewriteDomainForRestore(kRunningDomainXml, r);
  ASSERT_FALSE(stuck.ok());
  EXPECT_EQ(stuck.status().code(), StatusCode::kIOError);
  EXPECT_THAT(stuck.status().message(), HasSubstr("random source repeats"));
}

TEST(RestoreRewriteTest, SystemRandomSourceByDefault) {
  RestoreRewrite r = WebRewrite();
  r.random = nullptr;
  Rewritten out(r);
  ASSERT_EQ(out.config.interfaces.size(), 2u);
  EXPECT_THAT(out.config.interfaces[0].mac,
              ::testing::MatchesRegex("52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}"));
  EXPECT_NE(out.config.interfaces[0].mac, out.config.interfaces[1].mac);
}

TEST(RestoreRewriteTest, DropsWhatTiesItToTheOldInstance) {
  Rewritten out(WebRewrite());
  EXPECT_EQ(out.Count("alias"), 1);  // only the user's ua-tools
  pugi::xml_node label = out.root.child("seclabel");
  ASSERT_TRUE(label);
  EXPECT_STREQ(label.attribute("model").value(), "dac");
  EXPECT_FALSE(label.child("label"));
  EXPECT_FALSE(label.child("imagelabel"));
  EXPECT_EQ(out.Count("seclabel"), 1);  // vdc's labelskip label is gone
  pugi::xml_node graphics = out.devices.child("graphics");
  EXPECT_FALSE(graphics.attribute("port"));
  EXPECT_STREQ(graphics.attribute("websocket").value(), "-1");
  EXPECT_STREQ(graphics.attribute("listen").value(), "127.0.0.1");
  EXPECT_FALSE(out.devices.child("console").attribute("tty"));
  EXPECT_FALSE(out.devices.child("console").child("source"));
  EXPECT_FALSE(out.devices.child("serial").child("source"));
  pugi::xml_node channel = out.devices.child("channel");
  EXPECT_FALSE(channel.child("source").attribute("path"));
  EXPECT_STREQ(channel.child("source").attribute("mode").value(), "bind");
  EXPECT_FALSE(channel.child("target").attribute("state"));
  for (const char* kept : {"sda", "vdc"}) {
    EXPECT_FALSE(out.Disk(kept).child("source").attribute("index")) << kept;
  }
  EXPECT_EQ(out.xml.find("/dev/pts/"), std::string::npos);
  EXPECT_EQ(out.xml.find("vnet"), std::string::npos);
}

TEST(RestoreRewriteTest, UnmappedWritableDiskIsAnError) {
  RestoreRewrite r = WebRewrite();
  r.drop_unmapped_disks = false;
  auto out = RewriteDomainForRestore(kRunningDomainXml, r);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(),
              HasSubstr("disk vdd (network rbd 'vms/web01-logs') of domain 'web01' has no "
                        "restored image"));
  r.disks["vdd"] = {"/srv/restore/web01-vdd.raw", "raw"};  // a network disk made a file
  Rewritten all(r);
  EXPECT_VALID_XML(all.xml, "domain");
  ASSERT_EQ(all.config.disks.size(), 5u);
  EXPECT_EQ(all.config.disks[4].type, "file");
  EXPECT_EQ(all.config.disks[4].source_path, "/srv/restore/web01-vdd.raw");
  EXPECT_FALSE(all.Disk("vdd").child("auth"));
  EXPECT_EQ(all.xml.find("ceph"), std::string::npos);
}

TEST(RestoreRewriteTest, ReadonlyDiskInTheMapIsRestoredToo) {
  RestoreRewrite r = WebRewrite();
  r.disks["vdc"] = {"/srv/restore/tools.qcow2", "qcow2"};
  Rewritten out(r);
  EXPECT_VALID_XML(out.xml, "domain");
  EXPECT_EQ(out.config.disks[3].source_path, "/srv/restore/tools.qcow2");
  EXPECT_TRUE(out.config.disks[3].readonly);
  EXPECT_FALSE(out.config.disks[3].shareable);  // libvirt shares only raw images
}

TEST(RestoreRewriteTest, LunBecomesAFileDisk) {
  const std::string in = R"(<domain type='kvm'><name>db</name>
  <memory>131072</memory><os><type>hvm</type></os><devices>
    <disk type='block' device='lun' sgio='unfiltered' rawio='yes'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'>
        <reservations managed='yes'/>
      </source>
      <target dev='sdb' bus='scsi'/>
      <shareable/>
    </disk>
    <interface type='user'/>
  </devices></domain>)";
  EXPECT_VALID_XML(in, "domain");
  RestoreRewrite r;
  r.name = "db2";
  r.uuid = kNewUuid;
  r.disks = {{"sdb", {"/r/sdb.raw", "raw"}}};
  r.random = Counter{};
  Rewritten out(r, in);
  EXPECT_VALID_XML(out.xml, "domain");
  pugi::xml_node disk = out.Disk("sdb");
  EXPECT_STREQ(disk.attribute("type").value(), "file");
  EXPECT_STREQ(disk.attribute("device").value(), "disk");
  EXPECT_FALSE(disk.attribute("sgio"));
  EXPECT_FALSE(disk.attribute("rawio"));
  EXPECT_FALSE(disk.child("source").child("reservations"));
  EXPECT_TRUE(disk.child("shareable"));  // raw may stay shared
  // The XML had no <uuid> and the interface no <mac>: both are added.
  EXPECT_EQ(out.config.uuid, kNewUuid);
  ASSERT_EQ(out.config.interfaces.size(), 1u);
  EXPECT_EQ(out.config.interfaces[0].mac, "52:54:00:00:00:01");
}

TEST(RestoreRewriteTest, DiskWithoutDriverGetsOne) {
  const std::string in = R"(<domain type='qemu'><name>t</name><memory>131072</memory>
  <os><type>hvm</type></os><devices>
    <disk type='file' device='disk'><source file='/a.img'/><target dev='hda'/></disk>
  </devices></domain>)";
  RestoreRewrite r;
  r.name = "t2";
  r.uuid = kNewUuid;
  r.disks = {{"hda", {"/r/a.qcow2", "qcow2"}}};
  Rewritten out(r, in);
  EXPECT_VALID_XML(out.xml, "domain");
  EXPECT_EQ(out.config.disks[0].driver_type, "qcow2");
  EXPECT_EQ(out.config.disks[0].source_path, "/r/a.qcow2");
}

TEST(RestoreRewriteTest, NvramPathOnRequest) {
  RestoreRewrite r = WebRewrite();
  r.nvram_path = "/var/lib/libvirt/qemu/nvram/web01-restored_VARS.fd";
  Rewritten out(r);
  EXPECT_VALID_XML(out.xml, "domain");
  EXPECT_STREQ(out.root.first_element_by_path("os/nvram").child_value(), r.nvram_path.c_str());
}

TEST(RestoreRewriteTest, HostileNameAndPathsAreEscaped) {
  RestoreRewrite r = WebRewrite();
  r.name = "it's <\"web\"> & co ]]>";
  r.disks["vda"].path = "/srv/re store/'a' \"b\" <c> & d.qcow2";
  Rewritten out(r);
  EXPECT_VALID_XML(out.xml, "domain");
  EXPECT_EQ(out.config.name, r.name);
  EXPECT_EQ(out.config.disks[0].source_path, r.disks["vda"].path);
}

TEST(RestoreRewriteTest, RefusesBadInput) {
  auto err = [](const std::function<void(RestoreRewrite&)>& edit) {
    RestoreRewrite r = WebRewrite();
    edit(r);
    auto out = RewriteDomainForRestore(kRunningDomainXml, r);
    EXPECT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
    return out.status().message();
  };
  EXPECT_THAT(err([](auto& r) { r.name = "a/b"; }), HasSubstr("may not contain '/'"));
  EXPECT_THAT(err([](auto& r) { r.name = ""; }), HasSubstr("domain name is empty"));
  EXPECT_THAT(err([](auto& r) { r.uuid = "not-a-uuid"; }), HasSubstr("is not a UUID"));
  EXPECT_THAT(err([](auto& r) { r.uuid = "4DEA22B31D52D8F32516782E98AB3FA0"; }),
              HasSubstr("needs a UUID of its own"));
  EXPECT_THAT(err([](auto& r) {
                r.disks["vdz"] = {"/x", "raw"};
              }),
              HasSubstr("domain 'web01' has no disk 'vdz'"));
  EXPECT_THAT(err([](auto& r) { r.disks["vda"].path = "restore/a.qcow2"; }),
              HasSubstr("restored image of vda 'restore/a.qcow2' is not an absolute path"));
  EXPECT_THAT(err([](auto& r) { r.disks["vda"].driver_type = "vhdx"; }),
              HasSubstr("libvirt cannot use a 'vhdx' image for disk 'vda'"));
  EXPECT_THAT(err([](auto& r) { r.nvram_path = "nvram.fd"; }), HasSubstr("NVRAM file"));

  RestoreRewrite r = WebRewrite();
  EXPECT_THAT(RewriteDomainForRestore("<domain><name>x</name>", r).status().message(),
              HasSubstr("not well-formed"));
}

}  // namespace
}  // namespace vmvault::ingest
