// XXH64 as its specification (github.com/Cyan4973/xxHash, doc/xxhash_spec.md) defines it, for little-endian hosts.
#include "common/train/checksum.hpp"

#include <bit>
#include <cstdio>
#include <cstring>

namespace ladder {
namespace {

static_assert(std::endian::native == std::endian::little, "XXH64 reads its input as little-endian words");

constexpr std::uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr std::uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

std::uint64_t read64(const unsigned char* bytes) {
  std::uint64_t value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

std::uint32_t read32(const unsigned char* bytes) {
  std::uint32_t value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

std::uint64_t round(std::uint64_t lane, std::uint64_t input) {
  lane += input * kPrime2;
  return std::rotl(lane, 31) * kPrime1;
}

std::uint64_t merge_round(std::uint64_t hash, std::uint64_t lane) {
  hash ^= round(0, lane);
  return hash * kPrime1 + kPrime4;
}

}  // namespace

Xxh64::Xxh64() : lanes_{kPrime1 + kPrime2, kPrime2, 0, 0 - kPrime1} {}

void Xxh64::update(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  total_size_ += size;
  if (pending_size_ > 0) {  // complete the stripe an earlier call began
    const std::size_t taken = std::min(size, pending_.size() - pending_size_);
    std::memcpy(pending_.data() + pending_size_, bytes, taken);
    pending_size_ += taken;
    bytes += taken;
    size -= taken;
    if (pending_size_ < pending_.size()) return;
    for (int lane = 0; lane < 4; ++lane) lanes_[lane] = round(lanes_[lane], read64(pending_.data() + 8 * lane));
    pending_size_ = 0;
  }
  // Four independent lanes, so the multiplications of consecutive words overlap in the CPU.
  std::uint64_t lane0 = lanes_[0], lane1 = lanes_[1], lane2 = lanes_[2], lane3 = lanes_[3];
  for (; size >= 32; bytes += 32, size -= 32) {
    lane0 = round(lane0, read64(bytes));
    lane1 = round(lane1, read64(bytes + 8));
    lane2 = round(lane2, read64(bytes + 16));
    lane3 = round(lane3, read64(bytes + 24));
  }
  lanes_ = {lane0, lane1, lane2, lane3};
  std::memcpy(pending_.data(), bytes, size);
  pending_size_ = size;
}

std::uint64_t Xxh64::digest() const {
  std::uint64_t hash;
  if (total_size_ >= 32) {
    hash = std::rotl(lanes_[0], 1) + std::rotl(lanes_[1], 7) + std::rotl(lanes_[2], 12) + std::rotl(lanes_[3], 18);
    for (std::uint64_t lane : lanes_) hash = merge_round(hash, lane);
  } else {
    hash = kPrime5;  // the seed (0) + prime 5
  }
  hash += total_size_;
  const unsigned char* tail = pending_.data();
  std::size_t left = pending_size_;
  for (; left >= 8; tail += 8, left -= 8) hash = std::rotl(hash ^ round(0, read64(tail)), 27) * kPrime1 + kPrime4;
  if (left >= 4) {
    hash = std::rotl(hash ^ (std::uint64_t{read32(tail)} * kPrime1), 23) * kPrime2 + kPrime3;
    tail += 4;
    left -= 4;
  }
  for (; left > 0; ++tail, --left) hash = std::rotl(hash ^ (*tail * kPrime5), 11) * kPrime1;
  hash ^= hash >> 33;
  hash *= kPrime2;
  hash ^= hash >> 29;
  hash *= kPrime3;
  hash ^= hash >> 32;
  return hash;
}

std::uint64_t xxh64(const void* data, std::size_t size) {
  Xxh64 hash;
  hash.update(data, size);
  return hash.digest();
}

std::string hex64(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace ladder
