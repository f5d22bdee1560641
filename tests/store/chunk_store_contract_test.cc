// The chunk store contract, run against both engines: the in-memory one and RocksDB.
#include <gtest/gtest.h>

#include "store/chunk_codec.h"
#include "store/chunk_store.h"
#include "test_util.h"

namespace vmvault::store {
namespace {

struct MemEngine {
  std::unique_ptr<KvEngine> Make() { return std::make_unique<MemKvEngine>(); }
};

struct RocksEngine {
  testing::TempDir dir;
  std::unique_ptr<KvEngine> Make() {
    RocksKvOptions o;
    o.create = true;
    auto e = OpenRocksKvEngine(dir.path() + "/db", KvOpenMode::kReadWrite, o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(e).value();
  }
};

template <typename T>
class ChunkStoreContractTest : public ::testing::Test {
 protected:
  ChunkStoreContractTest()
      : kv_(factory_.Make()), hasher_("contract-secret-0123456789abcdef"), store_(kv_.get(), &hasher_) {}

  ChunkId PutChunk(const std::string& plain) {
    const auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(plain.data()),
                                                plain.size());
    const ChunkId id = hasher_.Hash(bytes);
    std::string value;
    encoder_.Encode(bytes, &value);
    EXPECT_TRUE(store_.Put(id, value).ok());
    return id;
  }

  T factory_;
  std::unique_ptr<KvEngine> kv_;
  ChunkHasher hasher_;
  ChunkStore store_;
  ChunkEncoder encoder_{3};
};

using Engines = ::testing::Types<MemEngine, RocksEngine>;
TYPED_TEST_SUITE(ChunkStoreContractTest, Engines);

TYPED_TEST(ChunkStoreContractTest, PutThenReadRoundTrips) {
  const std::string a = testing::TextBytes(1 << 20, 1), b = testing::RandomBytes(70000, 2);
  const ChunkId ida = this->PutChunk(a), idb = this->PutChunk(b);
  std::string out;
  ASSERT_TRUE(this->store_.Read(ida, &out).ok());
  EXPECT_EQ(out, a);
  ASSERT_TRUE(this->store_.Read(idb, &out).ok());
  EXPECT_EQ(out, b);
}

TYPED_TEST(ChunkStoreContractTest, LookupReportsMetaWithoutValue) {
  const std::string a = testing::TextBytes(300000, 3);
  auto missing = this->store_.Lookup(this->hasher_.Hash(
      {reinterpret_cast<const uint8_t*>(a.data()), a.size()}));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  const ChunkId id = this->PutChunk(a);
  auto meta = this->store_.Lookup(id);
  ASSERT_TRUE(meta.ok());
  ASSERT_TRUE(meta->has_value());
  EXPECT_EQ((*meta)->plain_len, a.size());
  EXPECT_LT((*meta)->stored_len, a.size());
}

TYPED_TEST(ChunkStoreContractTest, PutIsIdempotent) {
  const std::string a = testing::TextBytes(100000, 4);
  const ChunkId id1 = this->PutChunk(a), id2 = this->PutChunk(a);
  EXPECT_EQ(id1, id2);
  int n = 0;
  ASSERT_TRUE(this->store_.ForEach([&](const ChunkId&, const ChunkMeta&) { return ++n, true; }).ok());
  EXPECT_EQ(n, 1);
}

TYPED_TEST(ChunkStoreContractTest, MissingChunkIsNotFound) {
  ChunkId id;
  id.bytes[0] = 42;
  std::string out;
  Status s = this->store_.Read(id, &out);
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_NE(s.message().find(id.hex()), std::string::npos);
}

TYPED_TEST(ChunkStoreContractTest, TamperedValueIsCorruptionNamingTheChunk) {
  const std::string a = testing::RandomBytes(65536, 5);
  const ChunkId id = this->PutChunk(a);
  std::string value;
  ASSERT_TRUE(this->store_.ReadRaw(id, &value).ok());
  value[100] ^= 0x40;  // a raw chunk: the flip survives decoding, the hash catches it
  KvBatch batch;
  batch.Put(KvSpace::kChunks, id.key(), value);
  ASSERT_TRUE(this->kv_->Write(batch, true).ok());
  std::string out;
  Status s = this->store_.Read(id, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(id.hex()), std::string::npos);
  EXPECT_TRUE(out.empty());
}

TYPED_TEST(ChunkStoreContractTest, DeleteRemovesValueAndMeta) {
  const ChunkId id = this->PutChunk(testing::TextBytes(5000, 6));
  ASSERT_TRUE(this->store_.Delete(id).ok());
  std::string out;
  EXPECT_TRUE(this->store_.Read(id, &out).IsNotFound());
  EXPECT_FALSE(this->store_.Lookup(id)->has_value());
}

TYPED_TEST(ChunkStoreContractTest, ScanSeesOnlyItsPrefixInOrder) {
  KvBatch batch;
  for (const char* k : {"a/2", "a/1", "b/1", "a/3", "ab"}) batch.Put(KvSpace::kCatalog, k, k);
  ASSERT_TRUE(this->kv_->Write(batch, true).ok());
  std::vector<std::string> seen;
  ASSERT_TRUE(this->kv_->Scan(KvSpace::kCatalog, "a/", [&](std::string_view k, std::string_view) {
    seen.emplace_back(k);
    return true;
  }).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"a/1", "a/2", "a/3"}));
}

}  // namespace
}  // namespace vmvault::store
