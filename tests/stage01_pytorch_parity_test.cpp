// Stage 01 against PyTorch: the committed fixture (tests/reference/make_gpt_fixture.py, float64) holds the
// logits, loss and gradients of the first batch and the losses of 10 AdamW steps of the same tiny GPT.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "01_fp32_baseline/fp32_training.hpp"
#include "common/train/model_checkpoint.hpp"
#include "common/train/safetensors.hpp"
#include "tests/reference_config.hpp"
#include "tests/reference_fixture.hpp"

namespace ladder {
namespace {

const std::string kFixture = std::string(LADDER_SOURCE_DIR) + "/tests/reference/gpt_tiny_fixture.safetensors";
const std::string kInit = std::string(LADDER_SOURCE_DIR) + "/tests/reference/gpt_tiny_init.safetensors";

using testing_support::fixture_batch;
using testing_support::scaled_error;

std::vector<float> floats(const StoredTensor& stored) { return testing_support::fixture_floats(stored); }

class Stage01PyTorchParity : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = std::make_unique<SafetensorsFile>(SafetensorsFile::read(kFixture));
    const Batch first = fixture_batch(*fixture_, 0);
    AdamWConfig adamw;
    adamw.beta1 = std::stod(fixture_->metadata().at("betas").substr(0, fixture_->metadata().at("betas").find(',')));
    adamw.beta2 = std::stod(fixture_->metadata().at("betas").substr(fixture_->metadata().at("betas").find(',') + 1));
    adamw.epsilon = std::stod(fixture_->metadata().at("eps"));
    adamw.weight_decay = std::stod(fixture_->metadata().at("weight_decay"));
    adamw.gradient_clip = std::stod(fixture_->metadata().at("max_grad_norm"));
    learning_rate_ = std::stod(fixture_->metadata().at("lr"));
    training_ = std::make_unique<stage01::Fp32Training>(reference_config(), adamw, first.batch_size, first.sequence_length);
    load_model_checkpoint(kInit, training_->model);
  }
  std::unique_ptr<SafetensorsFile> fixture_;
  std::unique_ptr<stage01::Fp32Training> training_;
  double learning_rate_ = 0;
};

TEST_F(Stage01PyTorchParity, SeedInitialisationReproducesTheCommittedInitBitForBit) {
  // The fixture was made from weights this code drew from kReferenceSeed: the project's own RNG must give the
  // same bits on every platform, or a seed would not mean the same model everywhere.
  GPT fresh(reference_config(), DType::F32, 1, 1);
  fresh.initialize(kReferenceSeed);
  EXPECT_EQ(0, std::memcmp(fresh.parameters().data(), training_->model.parameters().data(), fresh.parameters().bytes()));
  for (const ParameterTensor& tensor : fresh.layout().tensors()) {
    EXPECT_EQ(floats(fixture_->get("init." + tensor.name)),
              std::vector<float>(fresh.parameter(tensor.name).as<float>(), fresh.parameter(tensor.name).as<float>() + tensor.numel))
        << tensor.name;
  }
}

TEST_F(Stage01PyTorchParity, FirstBatchLogitsLossAndGradientsMatch) {
  GPT& model = training_->model;
  const Batch batch = fixture_batch(*fixture_, 0);
  const double loss = model.forward(batch);
  const double reference_loss = floats(fixture_->get("step0.loss"))[0];
  EXPECT_NEAR(loss, reference_loss, 1e-5 * std::abs(reference_loss)) << "loss (tolerance 1e-5 relative)";

  const std::vector<float> reference_logits = floats(fixture_->get("step0.logits"));
  const int Vp = model.config().padded_vocab_size;
  std::vector<float> logits;
  for (int row = 0; row < batch.batch_size; ++row) {
    for (int t = 0; t < batch.sequence_length; ++t) {
      std::vector<float> real = model.logits_at(row, t);
      real.resize(static_cast<std::size_t>(Vp), 0.0f);  // padded columns: lm_head's padded rows are zero
      logits.insert(logits.end(), real.begin(), real.end());
    }
  }
  EXPECT_LT(scaled_error(logits.data(), reference_logits), 1e-5) << "logits (tolerance 1e-5 of the largest)";

  model.zero_gradients();
  model.backward();
  for (const ParameterTensor& tensor : model.layout().tensors()) {
    const std::vector<float> reference = floats(fixture_->get("step0.grad." + tensor.name));
    EXPECT_LT(scaled_error(model.gradient(tensor.name).as<float>(), reference), 1e-3)
        << "gradient of " << tensor.name << " (tolerance 1e-3 of its largest entry)";
  }
}

TEST_F(Stage01PyTorchParity, TenAdamWStepsTrackPyTorch) {
  GPT& model = training_->model;
  const std::vector<float> losses = floats(fixture_->get("losses"));
  const std::vector<float> norms = floats(fixture_->get("grad_norms"));
  for (int step = 0; step < static_cast<int>(losses.size()); ++step) {
    const double loss = model.forward(fixture_batch(*fixture_, step));
    model.zero_gradients();
    model.backward();
    const double norm = training_->optimizer.step(model.parameters(), model.gradients(), learning_rate_);
    EXPECT_NEAR(loss, losses[step], 1e-5 * std::abs(losses[step])) << "loss of step " << step << " (1e-5 relative)";
    EXPECT_NEAR(norm, norms[step], 1e-4 * norms[step]) << "gradient norm of step " << step << " (1e-4 relative)";
  }
  for (const ParameterTensor& tensor : model.layout().tensors()) {
    const std::vector<float> reference = floats(fixture_->get("final." + tensor.name));
    double worst = 0;
    for (std::size_t i = 0; i < reference.size(); ++i) {
      worst = std::max(worst, double(std::abs(model.parameter(tensor.name).as<float>()[i] - reference[i])));
    }
    EXPECT_LT(worst, 1e-4) << "final " << tensor.name << " (absolute tolerance 1e-4 after 10 steps at lr 1e-2)";
  }
}

}  // namespace
}  // namespace ladder
