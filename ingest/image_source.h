// ImageSource: a source disk opened for reading by several worker threads at once, each
// with its own Image (its own connection). ImageSourceOpener opens one from what
// qemu-img said about a file; NbdSourceOpener does it for real with a qemu-nbd per image
// and one libnbd connection per reader. Tests substitute an opener that serves
// in-memory images.
//
// An ImageSource must outlive the readers it handed out. OpenReader() is thread-safe;
// each reader is used by one thread. Openers are thread-safe.
#pragma once

#include <memory>

#include "base/image.h"
#include "base/result.h"
#include "ingest/qemu_img.h"

namespace vmvault::ingest {

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // A new reader of the whole disk, for one thread.
  virtual Result<std::unique_ptr<Image>> OpenReader() = 0;
};

class ImageSourceOpener {
 public:
  virtual ~ImageSourceOpener() = default;
  // Opens the image `info` describes for up to `readers` concurrent readers.
  virtual Result<std::unique_ptr<ImageSource>> Open(const ImageInfo& info, int readers) = 0;
};

// Starts `qemu-nbd` (see NbdServer) for each image; readers are NbdImage connections.
// The server stops when the ImageSource is destroyed.
class NbdSourceOpener final : public ImageSourceOpener {
 public:
  Result<std::unique_ptr<ImageSource>> Open(const ImageInfo& info, int readers) override;
};

}  // namespace vmvault::ingest
