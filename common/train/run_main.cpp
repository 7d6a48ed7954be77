#include "common/train/run_main.hpp"

#include <exception>
#include <iostream>

#include "common/error.hpp"
#include "common/train/options.hpp"

namespace ladder {

int run_main(const std::string& stage, const std::function<void()>& body) {
  try {
    body();
    return 0;
  } catch (const EarlyExit& early_exit) {
    return early_exit.code;
  } catch (const LadderError& error) {
    // Flush the progress lines first, so the error is the last thing a reader sees even when both go to a terminal.
    std::cout.flush();
    std::cerr << stage << ": error: " << error.what() << std::endl;
    return 1;
  } catch (const std::exception& error) {
    // Not the user's mistake but ours (or the machine's, e.g. std::bad_alloc): say so, with a distinct exit code.
    std::cout.flush();
    std::cerr << stage << ": internal error: " << error.what() << std::endl;
    return 2;
  } catch (...) {
    std::cout.flush();
    std::cerr << stage << ": internal error: an exception of unknown type" << std::endl;
    return 2;
  }
}

}  // namespace ladder
