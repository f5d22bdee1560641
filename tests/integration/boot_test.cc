// Booting a VM from a backup: a real QEMU (TCG) guest starts from an overlay whose
// backing file is the mounted <disk>.qcow2, and its boot sector reads a sector of the
// backup from a later chunk; QMP shows the bytes in guest memory.
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "views_fixture.h"

namespace vmvault::testing {
namespace {

namespace fs = std::filesystem;

// A 16-bit boot sector, hand-assembled (checked with `as --32` + `objdump -m i8086`).
// SeaBIOS loads it at 0:7C00 with DL = the boot drive. It reads one sector at LBA 16384
// (8 MiB, in another chunk) to 0:8000 with INT 13h AH=42h, then writes the done marker
// CD AB 34 12 32 54 CB ED (0x1234ABCD and its complement) at 0:7E00, or on failure
// 0xBAD0BAD0 at 0:7E00 and the error code (AH) at 0:7E04, and halts.
// clang-format off
constexpr uint8_t kBootCode[] = {
    0xFA,                                            // 7C00 cli
    0x31, 0xC0,                                      // 7C01 xor ax, ax
    0x8E, 0xD8,                                      // 7C03 mov ds, ax
    0x8E, 0xC0,                                      // 7C05 mov es, ax
    0x8E, 0xD0,                                      // 7C07 mov ss, ax
    0xBC, 0x00, 0x7C,                                // 7C09 mov sp, 0x7C00
    0xFB,                                            // 7C0C sti
    0xBE, 0x3B, 0x7C,                                // 7C0D mov si, 0x7C3B  ; the packet
    0xB4, 0x42,                                      // 7C10 mov ah, 0x42    ; extended read
    0xCD, 0x13,                                      // 7C12 int 0x13        ; DL = drive
    0x72, 0x16,                                      // 7C14 jc 7C2C         ; on error
    0x66, 0xC7, 0x06, 0x00, 0x7E,                    // 7C16 mov dword [0x7E00],
    0xCD, 0xAB, 0x34, 0x12,                          //        0x1234ABCD
    0x66, 0xC7, 0x06, 0x04, 0x7E,                    // 7C1F mov dword [0x7E04],
    0x32, 0x54, 0xCB, 0xED,                          //        0xEDCB5432
    0xFA,                                            // 7C28 cli
    0xF4,                                            // 7C29 hlt
    0xEB, 0xFC,                                      // 7C2A jmp 7C28
    0x88, 0x26, 0x04, 0x7E,                          // 7C2C mov [0x7E04], ah ; error code
    0x66, 0xC7, 0x06, 0x00, 0x7E,                    // 7C30 mov dword [0x7E00],
    0xD0, 0xBA, 0xD0, 0xBA,                          //        0xBAD0BAD0
    0xEB, 0xED,                                      // 7C39 jmp 7C28
    // 7C3B the disk address packet
    0x10, 0x00,                                      // size 16, reserved
    0x01, 0x00,                                      // 1 sector
    0x00, 0x80, 0x00, 0x00,                          // to 0000:8000
    0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // from LBA 16384
};
// clang-format on
constexpr uint64_t kGuestReadLba = 16384;
constexpr uint32_t kDoneMarker = 0x1234ABCD, kFailMarker = 0xBAD0BAD0;

// QEMU (TCG, 64 MiB, no devices but the disk) with a QMP socket. Destroying it asks QEMU
// to quit, then kills it by PID after a grace period.
class Qemu {
 public:
  Qemu(const std::string& disk, const std::string& dir)
      : qmp_path_(dir + "/qmp.sock"),
        process_(
            {"qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", "64", "-nographic",
             "-nodefaults", "-no-user-config", "-qmp", "unix:" + qmp_path_ + ",server=on,wait=off",
             "-drive", "file=" + disk + ",format=qcow2,if=ide"},
            dir + "/qemu.log") {
    if (process_.started()) {
      error_ = qmp_.Connect(qmp_path_, process_, std::chrono::seconds(20));
    } else {
      error_ = "qemu-system-x86_64 did not start";
    }
  }
  ~Qemu() { Quit(); }

  const std::string& error() const { return error_; }
  std::string log() const { return Slurp(process_.log_path()); }

  // `size` bytes of guest memory at `address` ("" on failure).
  std::string ReadMemory(uint64_t address, uint64_t size) {
    const std::string file = qmp_path_ + ".mem";
    std::error_code ec;
    fs::remove(file, ec);
    nlohmann::json reply =
        qmp_.Execute("pmemsave", {{"val", address}, {"size", size}, {"filename", file}});
    return reply.contains("return") ? Slurp(file) : "";
  }

  // Asks QEMU to quit, waits a little, then kills it.
  void Quit() {
    if (process_.Running()) qmp_.Execute("quit", {}, std::chrono::seconds(2));
    qmp_.Close();
    process_.Stop(std::chrono::seconds(3));
  }
  const Process& process() const { return process_; }
  bool Running() { return process_.Running(); }

 private:
  std::string qmp_path_;
  Process process_;
  QmpClient qmp_;
  std::string error_;
};

class BootTest : public ViewsFixture {};

TEST_F(BootTest, GuestReadsTheBackupThroughAnOverlayOnTheMountedQcow2) {
  // A 16 MiB disk: the boot sector, and a random sector 8 MiB in for the guest to read.
  const std::string source = tmp_ / "vda.raw";
  ASSERT_EQ(Sh("truncate -s 16M " + source), 0);
  std::string boot_sector(std::begin(kBootCode), std::end(kBootCode));
  boot_sector.resize(512, '\0');
  boot_sector[510] = '\x55';
  boot_sector[511] = '\xAA';
  const std::string pattern = RandomBytes(512);
  ASSERT_NO_FATAL_FAILURE(WriteAt(source, 0, boot_sector));
  ASSERT_NO_FATAL_FAILURE(WriteAt(source, kGuestReadLba * 512, pattern));
  static_assert(kGuestReadLba * 512 / kChunkSize > 0, "the sector is in a later chunk");

  Ingest({source}, "bootable");
  Mount mount(repo_, tmp_ / "mnt");
  ASSERT_TRUE(mount.ok());
  const std::string dir = BackupDir(mount, "bootable");
  const std::string qcow2 = View(dir, "vda", "qcow2"), raw = View(dir, "vda", "raw");
  const std::string qcow2_hash = Sha256(qcow2), raw_hash = Sha256(raw);
  ASSERT_EQ(qcow2_hash.size(), 64u) << qcow2_hash;
  const std::string overlay = tmp_ / "overlay.qcow2";
  ASSERT_EQ(QemuImg({"create", "-q", "-f", "qcow2", "-b", qcow2, "-F", "qcow2", overlay}), "");

  {
    Qemu vm(overlay, tmp_.path());
    ASSERT_EQ(vm.error(), "") << vm.log();
    std::string marker;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      marker = vm.ReadMemory(0x7E00, 8);
      ASSERT_EQ(marker.size(), 8u) << "QEMU: " << vm.process().how_it_ended() << vm.log();
      const uint64_t first = LoadLe(marker, 0, 4);
      if (first == kDoneMarker && LoadLe(marker, 4, 4) == (~kDoneMarker & 0xFFFFFFFF)) break;
      ASSERT_NE(first, kFailMarker) << "INT 13h failed with AH=" << LoadLe(marker, 4, 1);
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the guest never finished";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(vm.ReadMemory(0x8000, 512) == pattern)
        << "the guest read other bytes than the backup's sector " << kGuestReadLba;
    vm.Quit();
    EXPECT_FALSE(vm.Running());
  }

  // The backup is as it was.
  EXPECT_EQ(Sha256(qcow2), qcow2_hash);
  EXPECT_EQ(Sha256(raw), raw_hash);
  EXPECT_EQ(CompareFiles(raw, source), "");
}

}  // namespace
}  // namespace vmvault::testing
