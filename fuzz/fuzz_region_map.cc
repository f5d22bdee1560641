// Region maps, the views the mount builds (generated files, image headers, slices of
// the raw view), read through the ViewReader that serves every read at the mount. The
// input is a program of Append* calls; a plain string is built alongside as the model.
// Every read, at any offset and length, must return the model's bytes; RegionAt must
// tile the view; SEEK_DATA and SEEK_HOLE must agree with the regions.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "fs/chunk_cache.h"
#include "fs/region_map.h"
#include "fs/view_reader.h"
#include "store/chunk_store.h"

using vmvault::fuzz::Check;
using namespace vmvault;
using namespace vmvault::fs;

namespace {

constexpr uint64_t kChunkBytes = 4096;
constexpr uint64_t kMaxView = 1 << 20;


// Chunk `id` holds kChunkBytes bytes derived from its first id byte.
std::string ChunkBytes(const store::ChunkId& id) {
  std::string s(kChunkBytes, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(id.bytes[0] * 31 + i * 7 + 1);
  return s;
}

class FakeChunks final : public store::ChunkReader {
 public:
  Status Read(const store::ChunkId& id, std::string* plaintext) const override {
    *plaintext = ChunkBytes(id);
    return Status::OK();
  }
};

class Input {
 public:
  explicit Input(std::string_view in) : in_(in) {}
  bool empty() const { return in_.empty(); }
  uint64_t Byte() {
    if (in_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return b;
  }
  uint64_t Number(uint64_t limit) { return ((Byte() << 8) | Byte()) % limit; }

 private:
  std::string_view in_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(std::string_view(reinterpret_cast<const char*>(data), size));
  auto map = std::make_shared<RegionMap>();
  std::string model;
  // A bytes view that AppendView slices.
  std::string inner_bytes(2 * kChunkBytes, '\0');
  for (size_t i = 0; i < inner_bytes.size(); ++i) inner_bytes[i] = static_cast<char>(i * 13);
  const std::shared_ptr<const View> inner = MakeBytesView(inner_bytes);

  while (!in.empty() && model.size() < kMaxView) {
    switch (in.Byte() % 5) {
      case 0: {
        const uint64_t n = 1 + in.Number(300);
        std::string bytes(n, static_cast<char>(in.Byte()));
        map->AppendBytes(bytes);
        model += bytes;
        break;
      }
      case 1: {
        const uint64_t n = 1 + in.Number(3 * kChunkBytes);
        map->AppendZero(n);
        model.append(n, '\0');
        break;
      }
      case 2: {
        store::ChunkId id;
        id.bytes[0] = static_cast<uint8_t>(in.Byte() | 1);  // never the zero id
        const uint64_t off = in.Number(kChunkBytes);
        const uint64_t len = 1 + in.Number(kChunkBytes - off);
        map->AppendChunk(id, off, len);
        model += ChunkBytes(id).substr(off, len);
        break;
      }
      case 3: {
        const uint64_t off = in.Number(inner_bytes.size());
        const uint64_t len = 1 + in.Number(inner_bytes.size() - off);
        map->AppendView(inner, off, len);
        model += inner_bytes.substr(off, len);
        break;
      }
      case 4: {
        const uint64_t alignment = uint64_t{1} << in.Number(13);
        map->AppendPadding(alignment);
        if (model.size() % alignment != 0) model.append(alignment - model.size() % alignment, '\0');
        break;
      }
    }
  }
  Check(map->size() == model.size());
  if (model.empty()) return 0;

  // The regions tile [0, size).
  uint64_t at = 0;
  for (const Region& r : map->regions()) {
    Check(r.offset == at && r.length > 0);
    at += r.length;
  }
  Check(at == model.size());

  FakeChunks chunks;
  ChunkCache cache(&chunks, 1 << 20, kChunkBytes);
  ViewReader reader(&cache, nullptr);
  for (int i = 0; i < 8 && !in.empty(); ++i) {
    const uint64_t off = in.Number(model.size());
    const uint64_t len = 1 + in.Number(model.size() - off);
    Region r;
    Check(map->RegionAt(off, &r).ok() && r.offset <= off && off < r.offset + r.length);
    ReadResult out;
    Check(reader.Read(*map, off, len, &out).ok());
    Check(out.ToString() == model.substr(off, len));
    auto data = map->SeekData(off);
    auto hole = map->SeekHole(off);
    Check(data.ok() && hole.ok());
    Check(*data >= off && *data <= model.size() && *hole >= off && *hole <= model.size());
  }
  ReadResult all;
  Check(reader.Read(*map, 0, model.size(), &all).ok() && all.ToString() == model);
  return 0;
}
