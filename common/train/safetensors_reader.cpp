#include "common/train/safetensors_reader.hpp"

#include "common/error.hpp"

namespace ladder {

using namespace safetensors_format;

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path), header_(read_header(path, file_)) {
  for (std::size_t i = 0; i < header_.entries.size(); ++i) index_[header_.entries[i].name] = i;
}

const HeaderEntry& SafetensorsReader::entry(const std::string& name) const {
  const auto found = index_.find(name);
  if (found == index_.end()) throw defect(path_, "no tensor named '", name, "' (it holds ", index_.size(), ")");
  return header_.entries[found->second];
}

std::vector<std::string> SafetensorsReader::names() const {
  std::vector<std::string> result;
  for (const auto& [name, position] : index_) result.push_back(name);
  return result;
}

void SafetensorsReader::read(const std::string& name, std::uint64_t offset, void* destination, std::uint64_t bytes) {
  const HeaderEntry& tensor = entry(name);
  LADDER_CHECK(offset <= tensor.end - tensor.begin && bytes <= tensor.end - tensor.begin - offset, "reading '", path_,
               "': bytes ", offset, "-", offset + bytes, " of tensor '", name, "', which has ", tensor.end - tensor.begin);
  file_.seekg(static_cast<std::streamoff>(header_.data_start + tensor.begin + offset));
  // The header said the file is this long; a file cut short since then fails here, by name.
  if (!file_.read(static_cast<char*>(destination), static_cast<std::streamsize>(bytes))) {
    throw defect(path_, "reading tensor '", name, "' failed (the file is shorter than its header says)");
  }
}

}  // namespace ladder
