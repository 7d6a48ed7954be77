// Writes the tiny GPT's initial weights for tests/reference/make_gpt_fixture.py (see tests/reference/README.md).
// The config and seed here are the ones the parity test rebuilds; change them together.
#include <cstdio>

#include "common/model/gpt.hpp"
#include "common/train/model_checkpoint.hpp"
#include "common/train/run_main.hpp"
#include "tests/reference_config.hpp"

int main(int argc, char** argv) {
  return ladder::run_main("export_reference_init", [&] {
    LADDER_CHECK(argc == 2, "usage: export_reference_init OUTPUT.safetensors");
    ladder::GPT model(ladder::reference_config(), ladder::DType::F32, 1, 1);
    model.initialize(ladder::kReferenceSeed);
    ladder::save_model_checkpoint(argv[1], model, {{"seed", std::to_string(ladder::kReferenceSeed)}});
    std::printf("wrote %s (%lld parameters)\n", argv[1], static_cast<long long>(model.layout().parameter_count()));
  });
}
