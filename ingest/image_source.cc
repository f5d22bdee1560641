#include "ingest/image_source.h"

#include <fmt/format.h>

#include "base/names.h"
#include "ingest/nbd_image.h"
#include "ingest/nbd_server.h"

namespace vmvault::ingest {
namespace {

class NbdSource final : public ImageSource {
 public:
  NbdSource(std::unique_ptr<NbdServer> server, std::string path)
      : server_(std::move(server)), path_(std::move(path)) {}

  Result<std::unique_ptr<Image>> OpenReader() override {
    auto image = NbdImage::ConnectUnix(server_->socket_path());
    if (!image.ok()) return image.status().WithContext(Printable(path_));
    return std::unique_ptr<Image>(std::move(image).value());
  }

 private:
  const std::unique_ptr<NbdServer> server_;
  const std::string path_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> NbdSourceOpener::Open(const ImageInfo& info, int readers) {
  NbdServer::Options options;
  options.connections = readers;
  VV_ASSIGN_OR_RETURN(auto server, NbdServer::Start(info, options));
  return std::unique_ptr<ImageSource>(new NbdSource(std::move(server), info.path));
}

}  // namespace vmvault::ingest
