// Micro-benchmarks of the per-chunk work of ingest: hashing (store::ChunkHasher),
// compression and decompression (store::ChunkEncoder / ChunkDecoder), zero
// detection (IsAllZero), and the chunk store on RocksDB: the dedup lookup
// (store::ChunkStore::Lookup) and the read of a chunk a mount has not cached
// (store::ChunkStore::Read).
// All data is generated from fixed seeds.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "store/chunk_codec.h"
#include "store/chunk_id.h"
#include "store/repository.h"

namespace vmvault {
namespace {

uint64_t SplitMix(uint64_t& state) {
  uint64_t x = (state += 0x9e3779b97f4a7c15ULL);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

enum DataKind : int64_t { kRandom = 0, kText = 1, kHalfZero = 2 };

const char* KindName(int64_t kind) {
  switch (kind) {
    case kRandom: return "random";
    case kText: return "text";
    default: return "half-zero";
  }
}

// Incompressible bytes.
std::vector<uint8_t> RandomBytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> out(n);
  uint64_t state = seed;
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = SplitMix(state);
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

// Log-like lines from a small vocabulary: zstd -3 gets roughly 3-5x on it.
std::vector<uint8_t> TextBytes(size_t n, uint64_t seed) {
  static const char* const kWords[] = {
      "GET",      "POST",    "/api/v1/users", "/static/app.js", "HTTP/1.1", "200",
      "404",      "nginx",   "Mozilla/5.0",   "(X11;",          "Linux",    "x86_64)",
      "the",      "of",      "and",           "request",        "session",  "user_id=",
      "duration", "ms",      "INFO",          "WARN",           "db.query", "cache",
      "miss",     "hit",     "upstream",      "timeout",        "retry",    "ok"};
  constexpr size_t kWordCount = sizeof(kWords) / sizeof(kWords[0]);
  std::string s;
  s.reserve(n + 64);
  uint64_t state = seed;
  uint64_t line = 0;
  while (s.size() < n) {
    const uint64_t r = SplitMix(state);
    s += "2026-11-22T03:";
    s += std::to_string(10 + line % 50);
    s += ":";
    s += std::to_string(10 + (r >> 8) % 50);
    s += " 10.0.";
    s += std::to_string((r >> 16) % 256);
    s += ".";
    s += std::to_string((r >> 24) % 256);
    const int words = 5 + static_cast<int>((r >> 32) % 10);
    for (int w = 0; w < words; ++w) {
      s += ' ';
      s += kWords[SplitMix(state) % kWordCount];
    }
    s += ' ';
    s += std::to_string(SplitMix(state) % 100000);
    s += '\n';
    ++line;
  }
  return std::vector<uint8_t>(s.begin(), s.begin() + static_cast<ptrdiff_t>(n));
}

// Alternating 4 KiB blocks of random bytes and zeros, like a half-filled filesystem.
std::vector<uint8_t> HalfZeroBytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> out = RandomBytes(n, seed);
  for (size_t off = 4096; off < n; off += 8192) {
    std::memset(out.data() + off, 0, std::min<size_t>(4096, n - off));
  }
  return out;
}

std::vector<uint8_t> MakeData(int64_t kind, size_t n) {
  switch (kind) {
    case kRandom: return RandomBytes(n, 42);
    case kText: return TextBytes(n, 42);
    default: return HalfZeroBytes(n, 42);
  }
}

// --- hashing ---------------------------------------------------------------------

void BM_ChunkHash(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const std::vector<uint8_t> data = MakeData(state.range(1), size);
  const store::ChunkHasher hasher("bench-secret-0123456789abcdef0123456789");
  for (auto _ : state) {
    store::ChunkId id = hasher.Hash(data);
    benchmark::DoNotOptimize(id);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
  state.SetLabel(KindName(state.range(1)));
}
BENCHMARK(BM_ChunkHash)
    ->ArgNames({"bytes", "kind"})
    ->ArgsProduct({{64 << 10, 256 << 10, 1 << 20}, {kRandom, kText}});

// --- compression -----------------------------------------------------------------

constexpr size_t kChunk = 256 << 10;

void BM_ChunkEncode(benchmark::State& state) {
  const int level = static_cast<int>(state.range(0));
  const std::vector<uint8_t> data = MakeData(state.range(1), kChunk);
  store::ChunkEncoder encoder(level);
  std::string out;
  for (auto _ : state) {
    encoder.Encode(data, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kChunk));
  state.counters["ratio"] = static_cast<double>(kChunk) / static_cast<double>(out.size());
  state.SetLabel(KindName(state.range(1)));
}
BENCHMARK(BM_ChunkEncode)
    ->ArgNames({"level", "kind"})
    ->ArgsProduct({{1, 3}, {kText, kRandom, kHalfZero}});

void BM_ChunkDecode(benchmark::State& state) {
  const std::vector<uint8_t> data = MakeData(state.range(0), kChunk);
  std::string encoded;
  store::ChunkEncoder(3).Encode(data, &encoded);
  store::ChunkDecoder decoder;
  std::string out;
  for (auto _ : state) {
    Status s = decoder.Decode(encoded, &out);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kChunk));
  state.SetLabel(KindName(state.range(0)));
}
BENCHMARK(BM_ChunkDecode)->ArgName("kind")->DenseRange(kRandom, kHalfZero);

// --- zero detection --------------------------------------------------------------

void BM_IsAllZero(benchmark::State& state) {
  const std::vector<uint8_t> zeros(kChunk, 0);
  for (auto _ : state) {
    bool z = IsAllZero(std::span<const uint8_t>(zeros));
    benchmark::DoNotOptimize(z);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kChunk));
}
BENCHMARK(BM_IsAllZero);

// --- the chunk store on RocksDB: dedup lookup, chunk read -------------------------

// A RocksDB repository in a temporary directory, flushed to SST and blob files, built
// once and removed at exit. It holds kLookupChunks tiny chunks (their metadata stands
// for 64 GiB of distinct 256 KiB chunks: Lookup reads only the metadata) and
// kReadChunks real 256 KiB text chunks compressed at level 3, which go to blob files as
// every real chunk does.
constexpr uint64_t kLookupChunks = 1 << 18;
constexpr uint64_t kReadChunks = 256;

struct StoreFixture {
  std::filesystem::path dir;
  std::unique_ptr<store::Repository> repo;
  std::vector<store::ChunkId> stored, absent, readable;

  static void Check(const Status& s, const char* what) {
    if (!s.ok()) {
      std::fprintf(stderr, "vmvault_micro: %s: %s\n", what, s.ToString().c_str());
      std::abort();
    }
  }

  StoreFixture() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vmvault-micro.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) Check(Status::IOError("mkdtemp"), "temp dir");
    dir = tmpl;
    store::RepoConfig config;
    config.id = "bench";
    Check(store::Repository::Init((dir / "repo").string(), config), "init");
    Result<std::unique_ptr<store::Repository>> r =
        store::Repository::Open((dir / "repo").string(), store::RepoMode::kWrite);
    Check(r.status(), "open");
    repo = std::move(r).value();
    store::ChunkEncoder encoder(3);
    std::string value;
    for (uint64_t i = 0; i < 2 * kLookupChunks; ++i) {
      uint8_t plain[16];
      std::memcpy(plain, &i, 8);
      std::memcpy(plain + 8, "lookup!!", 8);
      const store::ChunkId id = repo->hasher().Hash(plain);
      if (i % 2 == 1) {  // every other id is never stored: the misses
        absent.push_back(id);
        continue;
      }
      encoder.Encode(plain, &value);
      Check(repo->chunks().Put(id, value), "put");
      stored.push_back(id);
    }
    for (uint64_t i = 0; i < kReadChunks; ++i) {
      const std::vector<uint8_t> plain = TextBytes(kChunk, 1000 + i);
      readable.push_back(repo->hasher().Hash(plain));
      encoder.Encode(plain, &value);
      Check(repo->chunks().Put(readable.back(), value), "put");
    }
    Check(repo->kv().Flush(), "flush");
  }
  ~StoreFixture() {
    repo.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

StoreFixture& Store() {
  static StoreFixture f;
  return f;
}

// state.range(0): 1 looks up stored chunks (the dedup hit of a later backup), 0 absent
// ones (a new chunk), in a seeded random order.
void BM_ChunkStoreLookup(benchmark::State& state) {
  StoreFixture& f = Store();
  const std::vector<store::ChunkId>& ids = state.range(0) != 0 ? f.stored : f.absent;
  uint64_t seed = 11;
  for (auto _ : state) {
    const store::ChunkId& id = ids[SplitMix(seed) % ids.size()];
    Result<std::optional<store::ChunkMeta>> meta = f.repo->chunks().Lookup(id);
    if (!meta.ok() || meta->has_value() != (state.range(0) != 0)) {
      state.SkipWithError("unexpected lookup result");
      break;
    }
    benchmark::DoNotOptimize(meta);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel(state.range(0) != 0 ? "hit" : "miss");
}
BENCHMARK(BM_ChunkStoreLookup)->ArgName("stored")->Arg(1)->Arg(0);

// What a mount does for a chunk it has not cached: the blob read, zstd, the re-hash.
// Blob files in the page cache (RocksDB keeps no cache of blobs here).
void BM_ChunkStoreRead(benchmark::State& state) {
  StoreFixture& f = Store();
  uint64_t seed = 13;
  std::string plain;
  for (auto _ : state) {
    const store::ChunkId& id = f.readable[SplitMix(seed) % f.readable.size()];
    Status s = f.repo->chunks().Read(id, &plain);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(plain.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kChunk));
  state.SetLabel("text, 256 KiB");
}
BENCHMARK(BM_ChunkStoreRead);

}  // namespace
}  // namespace vmvault
