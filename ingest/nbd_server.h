// NbdServer: a read-only qemu-nbd serving one image file (on its backing chain, see
// ImageInfo::backing_chain) on a unix socket, for as long as the object lives. The
// socket sits in a private temporary directory (mode 0700) so no other user can
// connect. Start() returns once the export is ready (qemu-nbd wrote its PID file and the
// socket accepts connections); the destructor stops qemu-nbd by its PID (SIGTERM, then
// SIGKILL) and removes the directory, so no daemon or socket outlives the object.
//
// The server accepts `connections` clients at once (qemu-nbd --shared): one per reader
// thread. NbdServer is not thread-safe, but socket_path() may be read from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "base/result.h"
#include "ingest/qemu_img.h"
#include "ingest/subprocess.h"

namespace vmvault::ingest {

class NbdServer {
 public:
  struct Options {
    int connections = 1;
    // How long to wait for the socket before giving up.
    std::chrono::milliseconds start_timeout{15000};
    // The qemu-nbd program, looked up on PATH.
    std::string program = "qemu-nbd";
  };

  // Serves the image `image` describes: its path (absolute), format, backing chain, and
  // with force_share, image locks ignored (for an image a paused QEMU holds).
  static Result<std::unique_ptr<NbdServer>> Start(const ImageInfo& image, const Options& options);
  // Serves the file `path` (absolute) as `format` (qemu's name).
  static Result<std::unique_ptr<NbdServer>> Start(const std::string& path,
                                                  const std::string& format, int connections) {
    ImageInfo image;
    image.path = path;
    image.format = format;
    Options options;
    options.connections = connections;
    return Start(image, options);
  }
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return child_ ? child_->pid() : -1; }

  // Stops qemu-nbd and removes the directory now. Idempotent.
  void Stop();

 private:
  NbdServer(std::string dir, std::string socket_path, std::unique_ptr<ChildProcess> child)
      : dir_(std::move(dir)), socket_path_(std::move(socket_path)), child_(std::move(child)) {}

  std::string dir_;
  std::string socket_path_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace vmvault::ingest
