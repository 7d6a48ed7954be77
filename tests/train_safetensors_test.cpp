// safetensors reading: round trips, byte-level compatibility with the Python library's layout, and every
// validation error on hand-corrupted files. The atomic write is tested in train_safetensors_write_test.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/error.hpp"
#include "common/train/safetensors.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using testing_support::Bytes;
using testing_support::bytes_of;
using testing_support::read_bytes;
using testing_support::write_bytes;

/// A file laid out by hand as the Python safetensors library does: u64 little-endian header length,
/// the JSON text padded with spaces to a multiple of 8, then the data. `length_override` forges the length.
Bytes hand_built_file(std::string header, const Bytes& data, std::int64_t length_override = -1) {
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::uint64_t length = length_override >= 0 ? std::uint64_t(length_override) : header.size();
  Bytes bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<unsigned char>((length >> (8 * i)) & 0xFF));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

/// The message of the LadderError that reading `path` throws ("" and a failure when it reads cleanly).
std::string read_error(const std::string& path) {
  SCOPED_TRACE("reading " + path);
  return testing_support::error_message_of([&] { SafetensorsFile::read(path); });
}

TEST(Safetensors, RoundTripOfEveryDtypeAndTheMetadata) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "model.safetensors");
  const std::vector<float> f32 = {1.5f, -2.25f, 3.0f, 0.0f, -0.0f, 1e-30f};
  const std::vector<Half> f16 = {Half(1.0f), Half(-65504.0f), Half(0.000061035156f)};
  const std::vector<BFloat16> bf16 = {BFloat16(3.0f), BFloat16(-1e30f)};
  const std::vector<double> f64 = {3.141592653589793, -1e300};
  const std::vector<std::int32_t> i32 = {7, -1, 2147483647, -2147483647 - 1};
  const std::map<std::string, std::string> metadata = {{"stage", "01_fp32_baseline"}, {"step", "400"}};
  write_safetensors(path,
                    {{"weights", DType::F32, {2, 3}, f32.data()},
                     {"half", DType::F16, {3}, f16.data()},
                     {"brain", DType::BF16, {1, 2}, bf16.data()},
                     {"double", DType::F64, {2, 1}, f64.data()},
                     {"tokens", DType::I32, {4}, i32.data()}},
                    metadata);

  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_EQ(file.path(), path);
  EXPECT_EQ(file.metadata(), metadata);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"brain", "double", "half", "tokens", "weights"}));
  const StoredTensor& weights = file.get("weights", DType::F32, {2, 3});
  EXPECT_EQ(weights.numel(), 6);
  EXPECT_EQ(weights.bytes, bytes_of(f32));
  EXPECT_EQ(file.get("half", DType::F16, {3}).bytes, bytes_of(f16));
  EXPECT_EQ(file.get("brain", DType::BF16, {1, 2}).bytes, bytes_of(bf16));
  EXPECT_EQ(file.get("double", DType::F64, {2, 1}).bytes, bytes_of(f64));
  EXPECT_EQ(file.get("tokens", DType::I32, {4}).bytes, bytes_of(i32));
  EXPECT_TRUE(file.contains("tokens"));
  EXPECT_FALSE(file.contains("token"));
  EXPECT_EQ(folder.entries(), std::vector<std::string>{"model.safetensors"});  // no temporary file left
}

TEST(Safetensors, ScalarsAndEmptyTensorsRoundTrip) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "edge.safetensors");
  const float scalar = 42.0f;
  write_safetensors(path, {{"empty", DType::F32, {0, 5}, nullptr}, {"scalar", DType::F32, {}, &scalar}});
  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_EQ(file.get("empty", DType::F32, {0, 5}).numel(), 0);
  EXPECT_TRUE(file.get("empty").bytes.empty());
  EXPECT_EQ(file.get("scalar", DType::F32, {}).numel(), 1);
  EXPECT_EQ(file.get("scalar").bytes, bytes_of(std::vector<float>{42.0f}));
  EXPECT_TRUE(file.metadata().empty());
}

TEST(Safetensors, ReadsAFileLaidOutByHandAsPythonWritesIt) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "python.safetensors");
  // 1.0f = 0x3F800000 and -2.0f = 0xC0000000, little-endian; int32 258 = 0x00000102.
  const Bytes data = {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x02, 0x01, 0x00, 0x00};
  write_bytes(path, hand_built_file(R"({"__metadata__":{"format":"pt"},)"
                                    R"("b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},)"
                                    R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                    data));
  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  float a[2];
  std::memcpy(a, file.get("a", DType::F32, {2}).bytes.data(), sizeof a);
  EXPECT_EQ(a[0], 1.0f);
  EXPECT_EQ(a[1], -2.0f);
  std::int32_t b;
  std::memcpy(&b, file.get("b", DType::I32, {1}).bytes.data(), sizeof b);
  EXPECT_EQ(b, 258);
}

TEST(Safetensors, WrittenHeaderIsTheExpectedJsonPaddedToEightBytes) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "layout.safetensors");
  const std::vector<float> first = {1, 2, 3, 4, 5, 6};
  const std::vector<std::int32_t> second = {9};
  write_safetensors(path, {{"w", DType::F32, {2, 3}, first.data()}, {"ids", DType::I32, {1}, second.data()}},
                    {{"step", "10"}});
  const Bytes bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 8u);
  std::uint64_t header_length = 0;
  for (int i = 0; i < 8; ++i) header_length |= std::uint64_t(bytes[i]) << (8 * i);
  EXPECT_EQ(header_length % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + header_length + 24 + 4);  // tensors laid out in the order given, no gaps
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + header_length);
  const auto json_end = header.find_last_not_of(' ');
  EXPECT_GT(json_end + 8, header.size() - 1) << "padding is at most 7 spaces";
  EXPECT_EQ(nlohmann::json::parse(header), nlohmann::json::parse(R"({
      "__metadata__": {"step": "10"},
      "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
      "ids": {"dtype": "I32", "shape": [1], "data_offsets": [24, 28]}})"));
  EXPECT_EQ(Bytes(bytes.begin() + 8 + header_length, bytes.begin() + 8 + header_length + 24), bytes_of(first));
  EXPECT_EQ(Bytes(bytes.end() - 4, bytes.end()), bytes_of(second));
}

/// One corrupt file and the phrase its error message must contain.
struct CorruptFile {
  std::string label;
  Bytes bytes;
  std::string expected_in_message;
};

TEST(Safetensors, EveryDefectIsNamedWithTheFile) {
  const Bytes eight(8, 0);
  const std::string a8 = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::vector<CorruptFile> cases = {
      {"short", Bytes{1, 2, 3, 4, 5}, "the file is 5 bytes, shorter than the 8-byte header length"},
      {"length", hand_built_file("{" + a8 + "}", eight, 1000), "the header length 1000 is larger than the"},
      {"json", hand_built_file(R"({"a":{"dtype":)", {}), "the header is not valid JSON"},
      {"array", hand_built_file("[1,2]", {}), "the header is array, not a JSON object"},
      {"no dtype", hand_built_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", eight),
       "tensor 'a': entry has no \"dtype\""},
      {"no shape", hand_built_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", eight),
       "tensor 'a': entry has no \"shape\""},
      {"no offsets", hand_built_file(R"({"a":{"dtype":"F32","shape":[2]}})", eight),
       "tensor 'a': entry has no \"data_offsets\""},
      {"dtype", hand_built_file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", eight),
       "tensor 'a': unknown dtype \"U8\"; supported: F32, F16, BF16, F64, I32"},
      {"negative", hand_built_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight),
       "\"shape\" holds -2; expected integers >= 0"},
      {"size", hand_built_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
       "tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12"},
      {"reversed", hand_built_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", eight),
       "end before they begin"},
      {"bounds", hand_built_file("{" + a8 + "}", Bytes(4, 0)), "tensor 'a': data_offsets [0, 8] run past the end"},
      {"overlap",
       hand_built_file("{" + a8 + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", Bytes(12, 0)),
       "tensor 'b' (bytes 4-12) overlaps tensor 'a'"},
      {"gap", hand_built_file("{" + a8 + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", Bytes(20, 0)),
       "a gap of 4 bytes lies between tensor 'a' and tensor 'b'"},
      {"late start", hand_built_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", Bytes(12, 0)),
       "a gap of 4 bytes lies between the start of the data and tensor 'a'"},
      {"trailing", hand_built_file("{" + a8 + "}", Bytes(12, 0)), "4 trailing bytes follow the last tensor"},
      {"duplicate", hand_built_file("{" + a8 + "," + a8 + "}", eight), "the name 'a' appears twice"},
      {"metadata", hand_built_file(R"({"__metadata__":{"step":10}})", {}), "metadata 'step' is 10"},
  };
  testing_support::TempFolder folder;
  for (const CorruptFile& corrupt : cases) {
    const std::string path = (folder / corrupt.label + ".safetensors");
    write_bytes(path, corrupt.bytes);
    const std::string message = read_error(path);
    EXPECT_NE(message.find("checkpoint '" + path + "': "), std::string::npos) << corrupt.label << ": " << message;
    EXPECT_NE(message.find(corrupt.expected_in_message), std::string::npos) << corrupt.label << ": " << message;
  }
  EXPECT_EQ(read_error((folder / "absent.safetensors")),
            "checkpoint '" + (folder / "absent.safetensors") + "': the file does not exist");
}

TEST(Safetensors, TruncatedCheckpointIsRejected) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "truncated.safetensors");
  const std::vector<float> values(10, 1.0f);
  write_safetensors(path, {{"w", DType::F32, {10}, values.data()}});
  Bytes bytes = read_bytes(path);
  bytes.resize(bytes.size() - 4);
  write_bytes(path, bytes);
  EXPECT_NE(read_error(path).find("tensor 'w': data_offsets [0, 40] run past the end of the data section (36 bytes)"),
            std::string::npos);
}

TEST(Safetensors, GetNamesTheTensorAndWhatDiffers) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "model.safetensors");
  const std::vector<float> values(6, 0.5f);
  write_safetensors(path, {{"w", DType::F32, {2, 3}, values.data()}});
  const SafetensorsFile file = SafetensorsFile::read(path);
  auto message_of = [&](auto call) -> std::string {
    try {
      call();
    } catch (const LadderError& error) {
      return error.what();
    }
    return "no error";
  };
  EXPECT_EQ(message_of([&] { file.get("v"); }), "checkpoint '" + path + "': no tensor named 'v' (it holds 1: w)");
  EXPECT_EQ(message_of([&] { file.get("w", DType::F16, {2, 3}); }),
            "checkpoint '" + path + "': tensor 'w' is F32 [2, 3]; expected F16 [2, 3]");
  EXPECT_EQ(message_of([&] { file.get("w", DType::F32, {3, 2}); }),
            "checkpoint '" + path + "': tensor 'w' is F32 [2, 3]; expected F32 [3, 2]");
}

}  // namespace
}  // namespace ladder
