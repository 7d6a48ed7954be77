/// @file checksum.hpp
/// @brief XXH64, the checksum a checkpoint's manifest keeps of every tensor: a flipped bit in a shard is found.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ladder {

/// XXH64 (Yann Collet's xxHash, 64-bit, seed 0) fed piece by piece: any split of the same bytes gives the same
/// value, so a tensor written or read in chunks is hashed as one. Fast enough (several GB/s) to hash every byte a
/// checkpoint writes; a checksum against accidents (truncation, bit rot, a shard swapped in), not an adversary.
class Xxh64 {
 public:
  Xxh64();
  /// Adds `size` bytes.
  void update(const void* data, std::size_t size);
  /// The hash of every byte added so far (more may still be added after).
  std::uint64_t digest() const;

 private:
  std::array<std::uint64_t, 4> lanes_;
  std::array<unsigned char, 32> pending_{};  // bytes of a 32-byte stripe not yet complete
  std::size_t pending_size_ = 0;
  std::uint64_t total_size_ = 0;
};

/// XXH64 of one block of bytes.
std::uint64_t xxh64(const void* data, std::size_t size);

/// "0123456789abcdef": a 64-bit value as 16 hex digits, as manifests store checksums.
std::string hex64(std::uint64_t value);

}  // namespace ladder
