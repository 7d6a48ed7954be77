/// @file parameter_layout.hpp
/// @brief The one flat parameter layout, unit by unit, that every stage slices (buckets, shards, FSDP units).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model/gpt_config.hpp"
#include "common/tensor.hpp"

namespace ladder {

/// One named parameter tensor inside the flat buffer.
struct ParameterTensor {
  std::string name;                 ///< e.g. "blocks.0.attn.qkv.weight"
  std::vector<std::int64_t> shape;  ///< row-major shape
  std::int64_t offset = 0;          ///< first element in the flat buffer
  std::int64_t numel = 0;           ///< element count
  int unit = 0;                     ///< index of the unit that owns it
  bool decays = false;              ///< AdamW weight decay applies (matrices and embeddings, not biases or norms)
};

/// A contiguous, padded slice of the flat buffer: the embeddings, one block, or the final norm + head.
struct ParameterUnit {
  std::string name;           ///< "embeddings", "blocks.3", "head"
  std::int64_t offset = 0;    ///< first element in the flat buffer
  std::int64_t size = 0;      ///< elements including padding (a multiple of the unit alignment)
  int first_tensor = 0;       ///< index of its first tensor in tensors()
  int tensor_count = 0;       ///< how many tensors it holds
};

/// Places every parameter of a GPT in one flat buffer. Tensors start at multiples of kTensorAlignment
/// elements; each unit's size is a multiple of kTensorAlignment · shard_multiple, so any unit splits evenly
/// into shard_multiple equal, aligned shards. Padding elements are zero and stay zero.
class ParameterLayout {
 public:
  /// Elements between tensor starts are rounded up to this (64 bytes of fp32: a cache line).
  static constexpr std::int64_t kTensorAlignment = 16;
  /// Lays out `config`'s parameters so that each unit divides into `shard_multiple` shards.
  explicit ParameterLayout(const GPTConfig& config, int shard_multiple = 1);
  /// Units in forward order: embeddings, blocks 0..L-1, head.
  const std::vector<ParameterUnit>& units() const { return units_; }
  /// Tensors in layout order.
  const std::vector<ParameterTensor>& tensors() const { return tensors_; }
  /// The tensor of that name; throws LadderError when absent.
  const ParameterTensor& tensor(const std::string& name) const;
  /// Elements of the flat buffer, padding included.
  std::int64_t padded_size() const { return padded_size_; }
  /// Real parameters (padding excluded); padded vocabulary rows count, as they are real rows of the tables.
  std::int64_t parameter_count() const { return parameter_count_; }
  /// The config it was built for.
  const GPTConfig& config() const { return config_; }

 private:
  GPTConfig config_;
  std::vector<ParameterUnit> units_;
  std::vector<ParameterTensor> tensors_;
  std::int64_t padded_size_ = 0;
  std::int64_t parameter_count_ = 0;
};

/// `tensor` as a shaped view into `unit_values`, the storage of the unit that owns it (unit.size elements).
Tensor unit_tensor_view(Tensor unit_values, const ParameterUnit& unit, const ParameterTensor& tensor);

}  // namespace ladder
