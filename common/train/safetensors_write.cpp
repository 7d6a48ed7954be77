// write_safetensors: the writing half of safetensors.hpp, kept apart from the validating reader.
#include <nlohmann/json.hpp>

#include <set>
#include <string>

#include "common/error.hpp"
#include "common/train/atomic_file.hpp"
#include "common/train/safetensors.hpp"
#include "common/train/safetensors_format.hpp"

namespace ladder {
namespace {

using namespace safetensors_format;

/// The JSON header, padded with spaces to a multiple of 8 bytes so the data section starts aligned
/// (what the Python library writes, and what lets a reader map the tensors in place).
std::string build_header(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata, bool data_given) {
  // ordered_json keeps "__metadata__" first and the tensors in file order: the header reads like the layout.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;  // the Python library also omits an empty one
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const TensorToWrite& tensor : tensors) {
    LADDER_CHECK(!tensor.name.empty(), "writing '", path, "': a tensor has an empty name");
    LADDER_CHECK(tensor.name != "__metadata__", "writing '", path, "': '__metadata__' is reserved, not a tensor name");
    LADDER_CHECK(names.insert(tensor.name).second, "writing '", path, "': tensor name '", tensor.name,
                 "' appears twice");
    const auto bytes = tensor_byte_count(tensor.shape, tensor.dtype);
    LADDER_CHECK(bytes.has_value(), "writing '", path, "': tensor '", tensor.name, "' has invalid shape ",
                 shape_text(tensor.shape), " (dimensions must be >= 0 and the size must fit in 64 bits)");
    LADDER_CHECK(!data_given || *bytes == 0 || tensor.data != nullptr, "writing '", path, "': tensor '", tensor.name,
                 "' has no data pointer");
    header[tensor.name] = {{"dtype", dtype_name(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + *bytes}}};
    offset += *bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& error) {
    throw LadderError(make_message("writing '", path, "': a name or metadata string is not UTF-8 (", error.what(), ")"));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

SafetensorsWriter::SafetensorsWriter(const std::string& path, const std::vector<TensorToWrite>& tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path), tensors_(tensors) {
  // Everything that can be checked is checked before a byte is written, so a bad call touches no file.
  const std::string header = build_header(path, tensors, metadata, /*data_given=*/false);
  file_.emplace(path, "checkpoint");
  unsigned char length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(std::uint64_t{header.size()} >> (8 * i));
  file_->write(length_bytes, sizeof length_bytes, "writing the header length");
  file_->write(header.data(), header.size(), "writing the header");
}

void SafetensorsWriter::write_next(const void* data) {
  LADDER_CHECK(written_ < tensors_.size(), "writing checkpoint '", path_, "': all ", tensors_.size(),
               " tensors are written already");
  const TensorToWrite& tensor = tensors_[written_];
  const std::uint64_t bytes = *tensor_byte_count(tensor.shape, tensor.dtype);
  LADDER_CHECK(bytes == 0 || data != nullptr, "writing '", path_, "': tensor '", tensor.name, "' has no data");
  LADDER_CHECK(written_part_ == 0, "writing checkpoint '", path_, "': tensor '", tensor.name,
               "' was begun in parts; finish it with write_part");
  write_part(data, bytes);
}

void SafetensorsWriter::write_part(const void* data, std::uint64_t bytes) {
  LADDER_CHECK(file_->is_open(), "writing checkpoint '", path_, "': the file is already closed");
  LADDER_CHECK(written_ < tensors_.size(), "writing checkpoint '", path_, "': all ", tensors_.size(),
               " tensors are written already");
  const TensorToWrite& tensor = tensors_[written_];
  const std::uint64_t tensor_bytes = *tensor_byte_count(tensor.shape, tensor.dtype);
  LADDER_CHECK(written_part_ + bytes <= tensor_bytes, "writing checkpoint '", path_, "': ", written_part_ + bytes,
               " bytes given for tensor '", tensor.name, "', which has ", tensor_bytes);
  file_->write(data, bytes, "writing tensor '" + tensor.name + "'");
  written_part_ += bytes;
  if (written_part_ < tensor_bytes) return;
  written_part_ = 0;
  ++written_;
}

void SafetensorsWriter::commit() {
  LADDER_CHECK(written_ == tensors_.size(), "writing checkpoint '", path_, "': only ", written_, " of ",
               tensors_.size(), " tensors were written");
  file_->commit();
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  build_header(path, tensors, metadata, /*data_given=*/true);  // every pointer checked before the file is created
  SafetensorsWriter writer(path, tensors, metadata);
  for (const TensorToWrite& tensor : tensors) writer.write_next(tensor.data);
  writer.commit();
}

}  // namespace ladder
