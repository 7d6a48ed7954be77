#include "common/data/data_source.hpp"

#include <algorithm>

namespace ladder {

std::int64_t Batch::valid_target_count() const {
  // -1 marks "no loss here" (prompt tokens, padding); every real target is a token id >= 0.
  return std::count_if(targets.begin(), targets.end(), [](std::int32_t target) { return target >= 0; });
}

}  // namespace ladder
