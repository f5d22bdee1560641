// ImageSource: a source disk opened for reading by several worker threads at once, each
// with its own Image. ImageSourceOpener opens one from what qemu-img said about a file.
// SourceOpener is the production one: a raw image (file or block device) is read
// directly (OpenRawSource), every other format through a qemu-nbd per image with one
// libnbd connection per reader (NbdSourceOpener). Tests substitute an opener that serves
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

// A raw image read with pread(2) through one descriptor that all its readers share (one
// open file, so the kernel's read-ahead sees the workers' interleaved reads as one
// sequential stream). Unless info.force_share, it holds the same OFD lock bytes as
// `qemu-nbd --read-only` on the file (QEMU's image locking: the consistent-read
// permission, and resize not shared), so QEMU processes see it as they would see that
// server; it refuses, as qemu-nbd would, while another process holds the resize
// permission or does not share consistent reads. Bytes past the end of the file up to
// info.virtual_size (qemu rounds a raw file's size up to 512 bytes) read as zeros; a file
// that is shorter than when it was opened is an error.
// REQUIRES: info.format == "raw".
Result<std::unique_ptr<ImageSource>> OpenRawSource(const ImageInfo& info);

// Raw images through OpenRawSource, the others through NbdSourceOpener.
class SourceOpener final : public ImageSourceOpener {
 public:
  Result<std::unique_ptr<ImageSource>> Open(const ImageInfo& info, int readers) override;
};

}  // namespace vmvault::ingest
