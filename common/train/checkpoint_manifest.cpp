#include "common/train/checkpoint_manifest.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "common/error.hpp"
#include "common/train/checksum.hpp"
#include "common/train/safetensors_format.hpp"

namespace ladder {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

const char* const kFormat = "ladder-training-state-v1";

const char* scope_name(StateScope scope) { return scope == StateScope::Sharded ? "sharded" : "replicated"; }

/// Builds the error for one defect of a manifest.
template <class... Parts>
LadderError manifest_defect(const std::string& path, const Parts&... parts) {
  return LadderError(make_message("checkpoint manifest '", path, "': ", parts...));
}

/// `object[key]`, which must exist and be of the kind `is_kind` accepts (`kind` names it for the message).
const json& field(const std::string& path, const json& object, const char* key, bool (json::*is_kind)() const noexcept,
                  const char* kind) {
  if (!object.is_object() || !object.contains(key)) throw manifest_defect(path, "the field \"", key, "\" is missing");
  const json& value = object.at(key);
  if (!(value.*is_kind)()) throw manifest_defect(path, "\"", key, "\" is ", value.dump(), "; expected ", kind);
  return value;
}

std::int64_t integer_field(const std::string& path, const json& object, const char* key) {
  return field(path, object, key, &json::is_number_integer, "an integer").get<std::int64_t>();
}

std::string string_field(const std::string& path, const json& object, const char* key) {
  return field(path, object, key, &json::is_string, "a string").get<std::string>();
}

std::map<std::string, std::string> strings_field(const std::string& path, const json& object, const char* key) {
  std::map<std::string, std::string> result;
  for (const auto& [name, value] : field(path, object, key, &json::is_object, "an object").items()) {
    if (!value.is_string()) throw manifest_defect(path, "\"", key, "\".\"", name, "\" is not a string");
    result[name] = value.get<std::string>();
  }
  return result;
}

std::uint64_t parse_checksum(const std::string& path, const std::string& text) {
  std::size_t used = 0;
  std::uint64_t value = 0;
  try {
    value = std::stoull(text, &used, 16);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.size() != 16) throw manifest_defect(path, "checksum '", text, "' is not 16 hex digits");
  return value;
}

ManifestFile read_file_entry(const std::string& path, const json& entry) {
  ManifestFile file;
  file.rank = static_cast<int>(integer_field(path, entry, "rank"));
  file.name = string_field(path, entry, "name");
  // A name is a file inside the checkpoint's folder, never a path that leads elsewhere.
  if (file.name.empty() || file.name.find('/') != std::string::npos || file.name == "." || file.name == "..") {
    throw manifest_defect(path, "file name '", file.name, "' is not a plain file name");
  }
  file.bytes = static_cast<std::uint64_t>(integer_field(path, entry, "bytes"));
  for (const auto& [name, value] : strings_field(path, entry, "checksums")) file.checksums[name] = parse_checksum(path, value);
  return file;
}

}  // namespace

std::string manifest_json(const CheckpointManifest& manifest) {
  ordered_json root;
  root["format"] = kFormat;
  root["stage"] = manifest.identity.stage;
  root["step"] = manifest.step;
  // Said for the reader of the file; a resume needs nothing but the step and the seed among the flags.
  root["data_position"] = {{"next_batch", manifest.step},
                           {"why", "a batch is a pure function of (seed, step, row): the step is the position"}};
  root["random_state"] = "none to save: random numbers are counter-based, hash(seed, position), drawn at "
                         "initialisation and for the batches";
  root["world_size"] = manifest.identity.world_size;
  root["device"] = manifest.device;
  root["model"] = manifest.identity.model;
  root["flags"] = manifest.identity.flags;
  ordered_json units = ordered_json::array();
  for (const ManifestUnit& unit : manifest.layout) units.push_back({{"name", unit.name}, {"size", unit.size}});
  root["layout"] = {{"sharding", "rank r of world_size holds piece r of equal pieces of every unit, in unit order"},
                    {"units", units}};
  ordered_json scalars = ordered_json::object();
  for (const auto& [name, scalar] : manifest.scalars) {
    if (scalar.integer) scalars[name] = scalar.integer_value;
    else scalars[name] = scalar.number_value;
  }
  root["scalars"] = scalars;
  ordered_json tensors = ordered_json::array();
  for (const ManifestTensor& tensor : manifest.tensors) {
    tensors.push_back({{"name", tensor.name},
                       {"scope", scope_name(tensor.scope)},
                       {"dtype", dtype_name(tensor.dtype)},
                       {"elements", tensor.elements}});
  }
  root["tensors"] = tensors;
  ordered_json files = ordered_json::array();
  for (const ManifestFile& file : manifest.files) {
    ordered_json checksums = ordered_json::object();
    for (const auto& [name, checksum] : file.checksums) checksums[name] = hex64(checksum);
    files.push_back({{"rank", file.rank}, {"name", file.name}, {"bytes", file.bytes}, {"checksums", checksums}});
  }
  root["files"] = files;
  return root.dump(2) + "\n";
}

CheckpointManifest read_manifest(const std::string& path) {
  std::ifstream stream(path);
  if (!stream) throw manifest_defect(path, "cannot be opened");
  std::ostringstream text;
  text << stream.rdbuf();
  json root;
  try {
    root = json::parse(text.str());
  } catch (const json::exception& error) {
    throw manifest_defect(path, "is not valid JSON (", error.what(), ")");
  }
  if (!root.is_object() || root.value("format", "") != kFormat) {
    throw manifest_defect(path, "is not a ladder checkpoint manifest (\"format\" should be \"", kFormat, "\")");
  }
  CheckpointManifest manifest;
  manifest.identity.stage = string_field(path, root, "stage");
  manifest.step = integer_field(path, root, "step");
  manifest.identity.world_size = static_cast<int>(integer_field(path, root, "world_size"));
  manifest.device = string_field(path, root, "device");
  manifest.identity.model = strings_field(path, root, "model");
  manifest.identity.flags = strings_field(path, root, "flags");
  if (manifest.step < 0 || manifest.identity.world_size < 1) {
    throw manifest_defect(path, "step ", manifest.step, " or world_size ", manifest.identity.world_size, " is impossible");
  }
  const json& layout = field(path, root, "layout", &json::is_object, "an object");
  for (const json& unit : field(path, layout, "units", &json::is_array, "an array")) {
    manifest.layout.push_back({string_field(path, unit, "name"), integer_field(path, unit, "size")});
  }
  for (const auto& [name, value] : field(path, root, "scalars", &json::is_object, "an object").items()) {
    if (!value.is_number()) throw manifest_defect(path, "scalar '", name, "' is ", value.dump(), ", not a number");
    ManifestScalar scalar;
    scalar.integer = value.is_number_integer();
    if (scalar.integer) scalar.integer_value = value.get<std::int64_t>();
    else scalar.number_value = value.get<double>();
    manifest.scalars[name] = scalar;
  }
  for (const json& entry : field(path, root, "tensors", &json::is_array, "an array")) {
    ManifestTensor tensor;
    tensor.name = string_field(path, entry, "name");
    const std::string scope = string_field(path, entry, "scope");
    if (scope != "replicated" && scope != "sharded") throw manifest_defect(path, "tensor '", tensor.name, "': scope '", scope, "'");
    tensor.scope = scope == "sharded" ? StateScope::Sharded : StateScope::Replicated;
    const auto dtype = safetensors_format::dtype_from_name(string_field(path, entry, "dtype"));
    if (!dtype) throw manifest_defect(path, "tensor '", tensor.name, "': unknown dtype");
    tensor.dtype = *dtype;
    tensor.elements = integer_field(path, entry, "elements");
    manifest.tensors.push_back(tensor);
  }
  std::vector<bool> seen(static_cast<std::size_t>(manifest.identity.world_size), false);
  for (const json& entry : field(path, root, "files", &json::is_array, "an array")) {
    ManifestFile file = read_file_entry(path, entry);
    if (file.rank < 0 || file.rank >= manifest.identity.world_size || seen[static_cast<std::size_t>(file.rank)]) {
      throw manifest_defect(path, "lists a file of rank ", file.rank, ", but the checkpoint was written by ",
                            manifest.identity.world_size, " ranks (0 to ", manifest.identity.world_size - 1,
                            "), each with at most one file");
    }
    seen[static_cast<std::size_t>(file.rank)] = true;
    manifest.files.push_back(std::move(file));
  }
  return manifest;
}

const ManifestFile& file_holding(const CheckpointManifest& manifest, const ManifestTensor& tensor, int rank,
                                 const std::string& where) {
  const int holder = tensor.scope == StateScope::Sharded ? rank : 0;
  for (const ManifestFile& file : manifest.files) {
    if (file.rank != holder) continue;
    if (file.checksums.count(tensor.name) == 0) {
      throw LadderError(make_message("checkpoint ", where, ": the manifest lists no checksum of tensor '", tensor.name,
                                     "' in rank ", holder, "'s file ", file.name));
    }
    return file;
  }
  throw LadderError(make_message("checkpoint ", where, ": the manifest lists no file of rank ", holder, " (of ",
                                 manifest.identity.world_size, "), which holds tensor '", tensor.name, "'"));
}

}  // namespace ladder
