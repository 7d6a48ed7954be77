#include "common/train/checkpoint_staging.hpp"

#include <algorithm>

#include "common/memory.hpp"
#include "common/ops/ops.hpp"
#include "common/train/checkpoint_io.hpp"

namespace ladder {

void visit_host_pieces(Tensor tensor, StagingDirection direction,
                       const std::function<void(void* host, std::uint64_t offset, std::uint64_t bytes)>& visit) {
  const auto total = static_cast<std::uint64_t>(tensor.bytes());
  const std::uint64_t element = dtype_size(tensor.dtype());
  // Pieces of whole elements, so that each GPU copy is a slice of the tensor; on the CPU they only keep the bytes
  // being hashed in cache while they are written or read.
  const std::uint64_t piece = std::max<std::uint64_t>(element, kCheckpointStagingBytes / element * element);
  Buffer staging;
  if (tensor.device() != Device::CPU && total > 0) {
    staging = Buffer(static_cast<std::size_t>(std::min(piece, total)), MemoryCategory::Workspace, Device::CPU);
  }
  for (std::uint64_t offset = 0; offset < total; offset += piece) {
    const std::uint64_t bytes = std::min(piece, total - offset);
    if (tensor.device() == Device::CPU) {
      visit(static_cast<unsigned char*>(tensor.data()) + offset, offset, bytes);
      continue;
    }
    const Tensor device_piece = tensor.slice(static_cast<std::int64_t>(offset / element),
                                             static_cast<std::int64_t>(bytes / element));
    const Tensor host_piece(staging.data(), tensor.dtype(), {static_cast<std::int64_t>(bytes / element)});
    if (direction == StagingDirection::Save) ops::copy(host_piece, device_piece);
    visit(staging.data(), offset, bytes);
    if (direction == StagingDirection::Restore) ops::copy(device_piece, host_piece);
  }
}

}  // namespace ladder
