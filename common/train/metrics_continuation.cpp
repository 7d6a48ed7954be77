#include "common/train/metrics_continuation.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.hpp"

namespace ladder {

bool continue_metrics_after(const std::string& path, std::int64_t step) {
  std::error_code error;
  if (path.empty() || !std::filesystem::is_regular_file(path, error)) return false;
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  const std::string text = content.str();
  std::size_t line_start = 0;
  while (line_start < text.size()) {
    const std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string::npos) break;  // a last line cut short by a killed run is never the record
    const nlohmann::json record =
        nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(line_start),
                              text.begin() + static_cast<std::ptrdiff_t>(line_end), nullptr, /*allow_exceptions=*/false);
    line_start = line_end + 1;
    if (record.is_object() && record.value("type", "") == "checkpoint" && record.value("step", std::int64_t{-1}) == step) {
      std::filesystem::resize_file(path, line_start, error);
      LADDER_CHECK(!error, "--metrics ", path, ": cannot cut it back to the checkpoint of step ", step, ": ",
                   error.message());
      return true;
    }
  }
  return false;
}

}  // namespace ladder
