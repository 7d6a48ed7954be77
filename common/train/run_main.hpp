/// @file run_main.hpp
/// @brief The shared main() wrapper: turns LadderError into "stage: error: ..." and a non-zero exit.
#pragma once

#include <functional>
#include <string>

namespace ladder {

/// Runs `body`; returns 0 on success, EarlyExit's code, or 1 after printing "<stage>: error: <message>"
/// to stderr for a LadderError (2 for other exceptions, printed as internal errors).
int run_main(const std::string& stage, const std::function<void()>& body);

}  // namespace ladder
