/// @file checkpoint_staging.hpp
/// @brief A tensor's bytes as host memory, piece by piece, wherever the tensor lives: what checkpoint files are
/// written from and read into.
#pragma once

#include <cstdint>
#include <functional>

#include "common/tensor.hpp"

namespace ladder {

/// Which way the bytes go.
enum class StagingDirection {
  Save,     ///< the tensor's bytes are read (copied off the GPU before each visit)
  Restore,  ///< the tensor's bytes are overwritten (copied onto the GPU after each visit)
};

/// Calls `visit(host, offset, bytes)` for consecutive pieces of `tensor`'s bytes, in order. A CPU tensor is visited in
/// place; a GPU tensor through a host staging buffer of at most kCheckpointStagingBytes (accounted as workspace), so
/// a checkpoint never holds a second copy of a whole tensor.
void visit_host_pieces(Tensor tensor, StagingDirection direction,
                       const std::function<void(void* host, std::uint64_t offset, std::uint64_t bytes)>& visit);

}  // namespace ladder
