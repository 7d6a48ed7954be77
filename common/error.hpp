/// @file error.hpp
/// @brief One exception type for every user-facing failure, and a check macro that builds its message.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ladder {

/// An error a user can act on: bad flag, bad file, impossible config. main() prints it and exits non-zero.
class LadderError : public std::runtime_error {
 public:
  /// Wraps a complete, human-readable message.
  explicit LadderError(const std::string& message) : std::runtime_error(message) {}
};

/// Builds a message from any streamable pieces, e.g. make_message("heads ", h, " do not divide ", c).
template <class... Parts>
std::string make_message(const Parts&... parts) {
  std::ostringstream stream;
  (stream << ... << parts);
  return stream.str();
}

}  // namespace ladder

/// Throws ladder::LadderError with the streamed message when the condition is false.
#define LADDER_CHECK(condition, ...)                                        \
  do {                                                                      \
    if (!(condition)) throw ::ladder::LadderError(::ladder::make_message(__VA_ARGS__)); \
  } while (0)
