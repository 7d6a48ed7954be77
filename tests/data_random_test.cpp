// random:V, the data source of benchmarks and memory plans: ids in range, the same rows for N ranks as for one,
// a held-out stream of its own, and bad specs refused by name.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/data/data_source.hpp"
#include "tests/data_test_support.hpp"

namespace ladder {
namespace {

using testing_support::error_message_of;
using testing_support::slice_of;

TEST(DataRandom, IdsFillTheVocabularyAndTargetsAreTheNextInput) {
  const auto source = make_data_source("random:50257", slice_of(0, 1, 4, 64), 3);
  EXPECT_EQ(source->vocab_size(), 50257);
  const Batch batch = source->train_batch(7);
  ASSERT_EQ(batch.inputs.size(), 4u * 64u);
  std::set<std::int32_t> seen;
  for (std::size_t i = 0; i < batch.inputs.size(); ++i) {
    ASSERT_GE(batch.inputs[i], 0);
    ASSERT_LT(batch.inputs[i], 50257);
    seen.insert(batch.inputs[i]);
    if (i % 64 != 63) {
      EXPECT_EQ(batch.targets[i], batch.inputs[i + 1]) << "a target is the next position's input";
    }
  }
  EXPECT_GT(seen.size(), 240u) << "256 draws from 50,257 ids should rarely repeat";
  EXPECT_EQ(batch.valid_target_count(), 4 * 64);
}

TEST(DataRandom, RanksReadTheRowsOfOneRankAndTheSeedAndStreamMatter) {
  testing_support::expect_two_ranks_match_one("random:300", 3, 8, 5, 4);
  const auto a = make_data_source("random:300", slice_of(0, 1, 2, 8), 5);
  const auto b = make_data_source("random:300", slice_of(0, 1, 2, 8), 6);
  EXPECT_EQ(a->train_batch(1).inputs, make_data_source("random:300", slice_of(0, 1, 2, 8), 5)->train_batch(1).inputs);
  EXPECT_NE(a->train_batch(1).inputs, b->train_batch(1).inputs);
  EXPECT_NE(a->train_batch(0).inputs, a->train_batch(1).inputs);
  EXPECT_NE(a->train_batch(0).inputs, a->eval_batch(0).inputs) << "held-out rows are not training rows";
  EXPECT_EQ(a->eval_problems(8).size(), 0u);
  EXPECT_EQ(a->decode({3, 299}), "<3> <299>");
}

TEST(DataRandom, BadSpecsAreRefusedNamingThem) {
  for (const std::string spec : {"random:", "random:abc", "random:12x", "random:1", "random:99999999"}) {
    const std::string message = error_message_of([&] { make_data_source(spec, slice_of(0, 1, 2, 8), 1); });
    EXPECT_NE(message.find(spec.substr(7).empty() ? "random:" : spec.substr(7)), std::string::npos) << spec << ": " << message;
  }
  const auto source = make_data_source("random:300", slice_of(0, 1, 2, 8), 1);
  EXPECT_THROW(source->encode("hello"), LadderError);
  EXPECT_THROW(source->decode({300}), LadderError);
}

}  // namespace
}  // namespace ladder
