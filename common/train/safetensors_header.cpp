// The header of a safetensors file, read and validated. A checkpoint is untrusted input, so every field of the
// header is checked before a byte of data is believed, and each defect is reported by name.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "common/train/safetensors_format.hpp"

namespace ladder::safetensors_format {
namespace {

using nlohmann::json;

// The format stores little-endian data, and tensors are copied as raw bytes.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

/// A JSON integer >= 0 (shape dimensions, offsets); anything else names the tensor and the field.
std::uint64_t read_count(const std::string& path, const std::string& name, const char* field, const json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) return value.get<std::uint64_t>();
  throw defect(path, "tensor '", name, "': \"", field, "\" holds ", value.dump(), "; expected integers >= 0");
}

HeaderEntry read_entry(const std::string& path, const std::string& name, const json& value) {
  if (!value.is_object()) throw defect(path, "tensor '", name, "': entry is ", value.dump(), ", not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(field)) throw defect(path, "tensor '", name, "': entry has no \"", field, "\"");
  }
  HeaderEntry entry;
  entry.name = name;

  const json& dtype = value["dtype"];
  const auto known = dtype.is_string() ? dtype_from_name(dtype.get<std::string>()) : std::nullopt;
  if (!known) {
    throw defect(path, "tensor '", name, "': unknown dtype ", dtype.dump(), "; supported: ", supported_dtype_names());
  }
  entry.dtype = *known;

  const json& shape = value["shape"];
  if (!shape.is_array()) throw defect(path, "tensor '", name, "': \"shape\" is ", shape.dump(), ", not an array");
  for (const json& dimension : shape) {
    const std::uint64_t size = read_count(path, name, "shape", dimension);
    if (size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw defect(path, "tensor '", name, "': dimension ", size, " is too large");
    }
    entry.shape.push_back(static_cast<std::int64_t>(size));
  }

  const json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    throw defect(path, "tensor '", name, "': \"data_offsets\" is ", offsets.dump(), "; expected [begin, end]");
  }
  entry.begin = read_count(path, name, "data_offsets", offsets[0]);
  entry.end = read_count(path, name, "data_offsets", offsets[1]);
  if (entry.end < entry.begin) {
    throw defect(path, "tensor '", name, "': data_offsets [", entry.begin, ", ", entry.end, "] end before they begin");
  }

  const auto bytes = tensor_byte_count(entry.shape, entry.dtype);
  if (!bytes) throw defect(path, "tensor '", name, "': shape ", shape_text(entry.shape), " is too large");
  if (entry.end - entry.begin != *bytes) {
    throw defect(path, "tensor '", name, "': data_offsets [", entry.begin, ", ", entry.end, "] hold ",
                 entry.end - entry.begin, " bytes, but shape ", shape_text(entry.shape), " of ",
                 dtype_name(entry.dtype), " needs ", *bytes);
  }
  return entry;
}

/// Parses the header text. nlohmann::json keeps the last of two equal keys silently, so a callback
/// watches every object's keys: a duplicated tensor name would otherwise hide one tensor.
json parse_header(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> keys_per_open_object;
  std::string duplicate;
  auto watch_keys = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys_per_open_object.emplace_back();
    if (event == json::parse_event_t::object_end) keys_per_open_object.pop_back();
    if (event == json::parse_event_t::key && !keys_per_open_object.back().insert(parsed.get<std::string>()).second &&
        duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, watch_keys);
  } catch (const json::exception& error) {
    throw defect(path, "the header is not valid JSON (", error.what(), ")");
  }
  if (!duplicate.empty()) throw defect(path, "the name '", duplicate, "' appears twice in the header");
  if (!header.is_object()) throw defect(path, "the header is ", header.type_name(), ", not a JSON object");
  return header;
}

/// The tensors must tile the data section exactly: starting at 0, each beginning where the one before ended,
/// the last ending at the end of the file. Anything else is corruption or a different format.
void check_layout(const std::string& path, std::vector<HeaderEntry>& entries, std::uint64_t data_bytes) {
  for (const HeaderEntry& entry : entries) {
    if (entry.end > data_bytes) {
      throw defect(path, "tensor '", entry.name, "': data_offsets [", entry.begin, ", ", entry.end,
                   "] run past the end of the data section (", data_bytes, " bytes)");
    }
  }
  std::sort(entries.begin(), entries.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;
  std::string previous = "the start of the data";
  for (const HeaderEntry& entry : entries) {
    if (entry.begin < covered) {
      throw defect(path, "tensor '", entry.name, "' (bytes ", entry.begin, "-", entry.end, ") overlaps ", previous,
                   " (which ends at ", covered, ")");
    }
    if (entry.begin > covered) {
      throw defect(path, "a gap of ", entry.begin - covered, " bytes lies between ", previous, " and tensor '",
                   entry.name, "'");
    }
    covered = entry.end;
    previous = "tensor '" + entry.name + "'";
  }
  if (covered != data_bytes) {
    throw defect(path, data_bytes - covered, " trailing bytes follow the last tensor (data section is ", data_bytes,
                 " bytes, tensors cover ", covered, ")");
  }
}

}  // namespace

Header read_header(const std::string& path, std::ifstream& file) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw defect(path, "the file does not exist");
  if (!std::filesystem::is_regular_file(path, error)) throw defect(path, "is not a regular file");
  const std::uint64_t file_bytes = std::filesystem::file_size(path, error);
  if (error) throw defect(path, "cannot read its size: ", error.message());
  file.open(path, std::ios::binary);
  if (!file) throw defect(path, "cannot open it: ", std::strerror(errno));

  if (file_bytes < 8) throw defect(path, "the file is ", file_bytes, " bytes, shorter than the 8-byte header length");
  unsigned char length_bytes[8];
  file.read(reinterpret_cast<char*>(length_bytes), 8);
  std::uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | length_bytes[i];
  if (header_bytes > file_bytes - 8) {
    throw defect(path, "the header length ", header_bytes, " is larger than the ", file_bytes - 8,
                 " bytes that follow it (truncated, or not a safetensors file)");
  }
  if (header_bytes > max_header_bytes) {
    throw defect(path, "the header length ", header_bytes, " exceeds the format's limit of ", max_header_bytes);
  }
  std::string text(header_bytes, '\0');
  if (!file.read(text.data(), static_cast<std::streamsize>(header_bytes))) {
    throw defect(path, "reading the header failed");
  }

  Header result;
  const json header = parse_header(path, text);
  for (const auto& [name, value] : header.items()) {
    if (name != "__metadata__") {
      result.entries.push_back(read_entry(path, name, value));
      continue;
    }
    if (!value.is_object()) throw defect(path, "\"__metadata__\" is ", value.dump(), ", not an object of strings");
    for (const auto& [key, text_value] : value.items()) {
      if (!text_value.is_string()) {
        throw defect(path, "metadata '", key, "' is ", text_value.dump(), "; the format allows only strings");
      }
      result.metadata[key] = text_value.get<std::string>();
    }
  }

  result.data_start = 8 + header_bytes;
  result.file_bytes = file_bytes;
  check_layout(path, result.entries, file_bytes - result.data_start);
  return result;
}

}  // namespace ladder::safetensors_format
