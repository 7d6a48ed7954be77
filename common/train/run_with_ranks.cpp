#include "common/train/run_with_ranks.hpp"

#include <iostream>
#include <memory>

#include "common/error.hpp"
#include "common/train/options.hpp"
#include "common/train/run_main.hpp"

namespace ladder {

int run_with_ranks(const std::string& stage, const std::function<void(Communicator&)>& body) {
  std::unique_ptr<Communicator> communicator;
  const int exit_code = run_main(stage, [&] {
    communicator = make_communicator("auto");
    try {
      body(*communicator);
    } catch (const EarlyExit&) {
      throw;  // --help: every rank leaves the same way, no one is left waiting
    } catch (const std::exception& error) {
      if (communicator->world_size() == 1) throw;
      std::cout.flush();
      communicator->abort(1, stage + ": error: " + error.what());
    }
  });
  return exit_code;
}

}  // namespace ladder
