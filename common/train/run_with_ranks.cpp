#include "common/train/run_with_ranks.hpp"

#include <CLI/CLI.hpp>

#include <charconv>
#include <iostream>
#include <memory>

#include "common/comm/simulated_communicator.hpp"
#include "common/cuda_runtime.hpp"
#include "common/error.hpp"
#include "common/train/options.hpp"
#include "common/train/run_main.hpp"

namespace ladder {

namespace {

int simulated_rank_count(const std::string& text) {
  int ranks = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), ranks);
  LADDER_CHECK(error == std::errc() && end == text.data() + text.size() && ranks >= 1, "--simulate-ranks ", text,
               ": expected a whole number of ranks, at least 1");
  return ranks;
}

}  // namespace

std::string flag_value(int argc, char** argv, const std::string& flag, const std::string& fallback) {
  std::string value = fallback;
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument == flag && i + 1 < argc) value = argv[++i];
    else if (argument.starts_with(flag + "=")) value = argument.substr(flag.size() + 1);
  }
  return value;
}

void add_communicator_flag(CLI::App& app) {
  // The value was already read from argv by run_with_ranks; this registers it for --help and its check.
  app.add_option("--comm", "Collectives: auto (NCCL with a GPU per rank, else MPI; local alone), local, mpi, nccl")
      ->check(CLI::IsMember({"auto", "local", "mpi", "nccl"}))
      ->default_str("auto")
      ->group("Data parallel");
  app.add_option("--simulate-ranks", "With --device meta: plan rank 0 of this many ranks (no memory, no sending)")
      ->check(CLI::PositiveNumber)
      ->default_str("1")
      ->group("Data parallel");
}

int run_with_ranks(const std::string& stage, int argc, char** argv, const std::function<void(Communicator&)>& body) {
  std::unique_ptr<Communicator> communicator;
  const int exit_code = run_main(stage, [&] {
    const std::string device = flag_value(argc, argv, "--device", "auto");
    std::string why;
    if (device == "meta") {
      // A plan: rank 0 of a world that exists on paper (see SimulatedCommunicator).
      const int ranks = simulated_rank_count(flag_value(argc, argv, "--simulate-ranks", "1"));
      LADDER_CHECK(!launched_with_several_ranks(), "--device meta plans one rank of a simulated world: run it "
                                                   "without mpiexec, with --simulate-ranks N");
      communicator = std::make_unique<SimulatedCommunicator>(ranks);
      why = make_message("simulated: rank 0 of ", ranks, " (--device meta: nothing is sent)");
    } else {
      LADDER_CHECK(flag_value(argc, argv, "--simulate-ranks", "1") == "1",
                   "--simulate-ranks plans a world of ranks on the meta device; add --device meta");
      communicator = make_communicator(flag_value(argc, argv, "--comm", "auto"), device, &why);
    }
    // NCCL chose its GPU when it started; over MPI (or alone) each rank takes the one its place on the node gives.
    const int gpus = cuda_device_count();
    if (communicator->backend() != "nccl" && device != "cpu" && device != "meta" && gpus > 0) {
      cuda_select_device(communicator->local_rank() % gpus);
    }
    bool asks_for_help = false;
    for (int i = 1; i < argc; ++i) asks_for_help = asks_for_help || std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h";
    if (communicator->rank() == 0 && !asks_for_help) std::cout << stage << " | communicator " << why << '\n';
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
