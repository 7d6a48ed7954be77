// convert_between_devices: the one op whose arguments may sit on different devices. It stages each GPU side
// through a host array, so that the conversion itself is the CPU's convert(), rounding exactly as everywhere else.
#include <vector>

#include "common/ops/ops.hpp"

namespace ladder::ops {

namespace {

// A host array with the dtype and element count of `like`.
struct HostStaging {
  explicit HostStaging(const Tensor& like)
      : bytes(static_cast<std::size_t>(like.bytes())), view(bytes.data(), like.dtype(), {like.numel()}) {}
  std::vector<unsigned char> bytes;  // declared before view, so it exists when view points into it
  Tensor view;
};

}  // namespace

void convert_between_devices(Tensor destination, Tensor source) {
  if (destination.device() == source.device()) {
    convert(destination, source);
    return;
  }
  const Tensor flat_source = source.reshaped({source.numel()});
  const Tensor flat_destination = destination.reshaped({destination.numel()});
  if (source.device() == Device::CUDA) {
    HostStaging host_source(flat_source);
    copy(host_source.view, flat_source);
    convert(flat_destination, host_source.view);  // destination is on the CPU
  } else {
    HostStaging host_destination(flat_destination);
    convert(host_destination.view, flat_source);
    copy(flat_destination, host_destination.view);  // destination is on the GPU
  }
}

}  // namespace ladder::ops
