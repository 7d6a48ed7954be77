// SafetensorsFile: a whole checkpoint read into memory, after safetensors_header.cpp has validated its header.
#include "common/train/safetensors.hpp"

#include <fstream>

#include "common/error.hpp"
#include "common/train/safetensors_format.hpp"

namespace ladder {

using namespace safetensors_format;

std::int64_t StoredTensor::numel() const {
  std::int64_t count = 1;
  for (std::int64_t dimension : shape) count *= dimension;
  return count;
}

SafetensorsFile SafetensorsFile::read(const std::string& path) {
  std::ifstream file;
  Header header = read_header(path, file);
  SafetensorsFile result;
  result.path_ = path;
  result.metadata_ = std::move(header.metadata);
  for (HeaderEntry& entry : header.entries) {
    StoredTensor tensor;
    tensor.dtype = entry.dtype;
    tensor.shape = std::move(entry.shape);
    tensor.bytes.resize(entry.end - entry.begin);
    file.seekg(static_cast<std::streamoff>(header.data_start + entry.begin));
    if (!file.read(reinterpret_cast<char*>(tensor.bytes.data()), static_cast<std::streamsize>(tensor.bytes.size()))) {
      throw defect(path, "reading tensor '", entry.name, "' failed");
    }
    result.tensors_.emplace(entry.name, std::move(tensor));
  }
  return result;
}

bool SafetensorsFile::contains(const std::string& name) const { return tensors_.count(name) > 0; }

const StoredTensor& SafetensorsFile::get(const std::string& name) const {
  const auto found = tensors_.find(name);
  if (found != tensors_.end()) return found->second;
  std::string available;
  for (const auto& [stored_name, tensor] : tensors_) {
    if (available.size() > 200) {
      available += ", ...";
      break;
    }
    available += (available.empty() ? "" : ", ") + stored_name;
  }
  throw defect(path_, "no tensor named '", name, "' (it holds ", tensors_.size(), ": ", available, ")");
}

const StoredTensor& SafetensorsFile::get(const std::string& name, DType dtype,
                                         const std::vector<std::int64_t>& shape) const {
  const StoredTensor& tensor = get(name);
  if (tensor.dtype != dtype || tensor.shape != shape) {
    throw defect(path_, "tensor '", name, "' is ", dtype_name(tensor.dtype), " ", shape_text(tensor.shape),
                 "; expected ", dtype_name(dtype), " ", shape_text(shape));
  }
  return tensor;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> result;
  for (const auto& [name, tensor] : tensors_) result.push_back(name);
  return result;
}

}  // namespace ladder
