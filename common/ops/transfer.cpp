// The ops that cross devices: readable_on_host, and convert_between_devices, which stages the GPU side through a
// host array so that the conversion itself is the CPU's convert(), rounding exactly as everywhere else. The meta
// device reads as zeros and takes writes without keeping them (see copy()).
#include <vector>

#include "common/ops/ops.hpp"

namespace ladder::ops {

Tensor readable_on_host(Tensor values, std::vector<unsigned char>& staging) {
  if (values.device() == Device::CPU) return values;
  staging.resize(static_cast<std::size_t>(values.bytes()));
  const Tensor host(staging.data(), values.dtype(), {values.numel()});
  copy(host, values.reshaped({values.numel()}));
  return host;
}

void convert_between_devices(Tensor destination, Tensor source) {
  if (destination.device() == source.device()) {
    convert(destination, source);
    return;
  }
  std::vector<unsigned char> staging;
  if (source.device() != Device::CPU) {
    convert(destination, readable_on_host(source, staging));  // destination is on the CPU
  } else {
    staging.resize(static_cast<std::size_t>(destination.bytes()));
    const Tensor host_destination(staging.data(), destination.dtype(), {destination.numel()});
    convert(host_destination, source);
    copy(destination.reshaped({destination.numel()}), host_destination);  // destination is on the GPU (or meta)
  }
}

}  // namespace ladder::ops
