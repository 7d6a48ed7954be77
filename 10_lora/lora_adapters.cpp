#include "10_lora/lora_adapters.hpp"

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"

namespace ladder::stage10 {

namespace {

// Separates the adapters' random streams from the model's (which hash the seed with small tensor indices).
constexpr std::uint64_t kInitializationSalt = 0x4C6F5241'00000001ULL;  // "LoRA", 1
constexpr std::uint64_t kDropoutSalt = 0x4C6F5241'00000002ULL;

// The GPT parameter that holds a block linear's weight.
std::string weight_suffix(BlockLinear linear) {
  switch (linear) {
    case BlockLinear::Qkv: return "attn.qkv.weight";
    case BlockLinear::AttentionProjection: return "attn.proj.weight";
    case BlockLinear::MlpFc: return "mlp.fc.weight";
    case BlockLinear::MlpProjection: return "mlp.proj.weight";
  }
  throw LadderError("unknown block linear");
}

Tensor no_bias(DType dtype) { return Tensor(nullptr, dtype, {0}); }

// The first `rows` × `columns` elements of `values`, as a matrix: scratch sized for the largest batch, used for N rows.
Tensor rows_of(Tensor values, std::int64_t rows, std::int64_t columns) {
  return values.slice(0, rows * columns).reshaped({rows, columns});
}

}  // namespace

LoraAdapters::LoraAdapters(const GPT& model, const LoraSettings& settings, std::uint64_t seed)
    : settings_(settings),
      dtype_(model.dtype()),
      max_tokens_(std::int64_t{model.max_batch_size()} * model.max_sequence_length()) {
  const GPTConfig& config = model.config();
  validate(settings_, config);
  const std::int64_t C = config.channels, r = settings_.rank;
  by_linear_.resize(static_cast<std::size_t>(config.layer_count) * 4);
  std::int64_t size = 0, widest_output = 0, widest_input = 0;
  bool in_fused_qkv = false;
  for (int layer = 0; layer < config.layer_count; ++layer) {
    const std::string block = "blocks." + std::to_string(layer) + ".";
    for (const LoraTarget& target : lora_targets()) {
      if (std::find(settings_.targets.begin(), settings_.targets.end(), target.name) == settings_.targets.end()) continue;
      LoraAdapter adapter;
      adapter.layer = layer;
      adapter.target = &target;
      adapter.name = make_message(block, target.module);
      adapter.weight_name = make_message(block, weight_suffix(target.linear));
      const ParameterTensor& weight = model.layout().tensor(adapter.weight_name);
      adapter.rows = target.row_block >= 0 ? C : weight.shape[0];
      adapter.row_offset = target.row_block >= 0 ? target.row_block * C : 0;
      adapter.columns = weight.shape[1];
      adapter.a_offset = size;
      adapter.b_offset = size + r * adapter.columns;
      size = adapter.b_offset + adapter.rows * r;
      widest_output = std::max(widest_output, weight.shape[0]);
      widest_input = std::max(widest_input, adapter.columns);
      in_fused_qkv = in_fused_qkv || target.row_block >= 0;
      adapters_at(layer, target.linear).push_back(adapters_.size());
      adapters_.push_back(adapter);
    }
  }

  const Device device = model.device();
  const std::size_t element = dtype_size(dtype_);
  weight_storage_ = Buffer(size * element, MemoryCategory::Parameters, device);
  gradient_storage_ = Buffer(size * element, MemoryCategory::Gradients, device);
  weights_ = view_of(weight_storage_, dtype_);
  gradients_ = view_of(gradient_storage_, dtype_);
  hidden_storage_ = Buffer(adapters_.size() * max_tokens_ * r * element, MemoryCategory::Activations, device);

  // Scratch, one piece after another: the added term, the gradient of the hidden r values, the 3C×r padded B and
  // its gradient (q, k, v only), the dropped-out input and its gradient (dropout only).
  const std::int64_t padded = in_fused_qkv ? 3 * C * r : 0;
  const std::int64_t dropped = settings_.dropout > 0 ? max_tokens_ * widest_input : 0;
  const std::int64_t sizes[] = {max_tokens_ * widest_output, max_tokens_ * r, padded, padded, dropped, dropped};
  std::int64_t total = 0;
  for (std::int64_t piece : sizes) total += piece;
  scratch_storage_ = Buffer(total * element, MemoryCategory::Workspace, device);
  const Tensor scratch = view_of(scratch_storage_, dtype_);
  Tensor* pieces[] = {&term_, &hidden_gradient_, &padded_b_, &padded_b_gradient_, &dropped_input_,
                      &dropped_input_gradient_};
  std::int64_t offset = 0;
  for (int i = 0; i < 6; ++i) {
    *pieces[i] = scratch.slice(offset, sizes[i]);
    offset += sizes[i];
  }
  if (in_fused_qkv) {
    padded_b_ = padded_b_.reshaped({3 * C, r});
    padded_b_gradient_ = padded_b_gradient_.reshaped({3 * C, r});
  }
  initialize(seed);
}

std::vector<std::size_t>& LoraAdapters::adapters_at(int layer, BlockLinear linear) {
  return by_linear_[static_cast<std::size_t>(layer) * 4 + static_cast<std::size_t>(linear)];
}

void LoraAdapters::initialize(std::uint64_t seed) {
  // Drawn in double, rounded to fp32, then once into the adapters' dtype (as the GPT's own initialisation).
  std::vector<float> values(static_cast<std::size_t>(parameter_count()), 0.0f);  // B stays zero
  for (const LoraAdapter& adapter : adapters_) {
    // PEFT: kaiming_uniform_(A, a=√5): gain √(2/(1+a²)) = √(1/3), bound √3·gain/√fan_in = 1/√k.
    const double bound = 1.0 / std::sqrt(static_cast<double>(adapter.columns));
    const auto target_index = static_cast<std::uint64_t>(adapter.target - lora_targets().data());
    Random random(hash_combine(seed, kInitializationSalt, static_cast<std::uint64_t>(adapter.layer), target_index));
    for (std::int64_t i = 0; i < settings_.rank * adapter.columns; ++i) {
      values[static_cast<std::size_t>(adapter.a_offset + i)] = static_cast<float>(bound * (2.0 * random.uniform() - 1.0));
    }
  }
  ops::convert_between_devices(weights_, Tensor(values.data(), DType::F32, {parameter_count()}));
  dropout_seed_ = hash_combine(seed, kDropoutSalt);
}

void LoraAdapters::zero_gradients() { ops::set_zero(gradients_); }

Tensor LoraAdapters::a_of(Tensor values, std::size_t index) const {
  LADDER_CHECK(values.numel() == parameter_count(), "adapter values hold ", values.numel(), " elements, expected ",
               parameter_count());
  const LoraAdapter& adapter = adapters_.at(index);
  return values.slice(adapter.a_offset, settings_.rank * adapter.columns).reshaped({settings_.rank, adapter.columns});
}

Tensor LoraAdapters::b_of(Tensor values, std::size_t index) const {
  LADDER_CHECK(values.numel() == parameter_count(), "adapter values hold ", values.numel(), " elements, expected ",
               parameter_count());
  const LoraAdapter& adapter = adapters_.at(index);
  return values.slice(adapter.b_offset, adapter.rows * settings_.rank).reshaped({adapter.rows, settings_.rank});
}

std::vector<ShardSpan> LoraAdapters::spans() const {
  // A and B are matrices, so they decay like the model's (HF's Trainer decays all but biases and norms).
  std::vector<ShardSpan> spans;
  for (const LoraAdapter& adapter : adapters_) {
    for (const auto& [offset, count] : {std::pair{adapter.a_offset, settings_.rank * adapter.columns},
                                        std::pair{adapter.b_offset, adapter.rows * settings_.rank}}) {
      spans.push_back({offset, offset, count, true});
    }
  }
  return spans;
}

void LoraAdapters::enable_dropout(std::int64_t step) { dropout_step_ = step; }

void LoraAdapters::disable_dropout() { dropout_step_.reset(); }

std::uint64_t LoraAdapters::mask_seed(std::size_t index) const {
  return hash_combine(dropout_seed_, static_cast<std::uint64_t>(*forward_dropout_step_), index);
}

// B as the GEMM needs it: (d, r) for a whole matrix; for q, k or v, a 3C×r matrix holding B in its rows and zeros
// elsewhere, so that (x·Aᵀ)·Bᵀ is the whole qkv output's term, zero outside the target's columns.
Tensor LoraAdapters::full_b(std::size_t index, Tensor b) {
  const LoraAdapter& adapter = adapters_[index];
  if (adapter.target->row_block < 0) return b;
  ops::set_zero(padded_b_);
  ops::copy(padded_b_.slice(adapter.row_offset * settings_.rank, b.numel()), b.reshaped({b.numel()}));
  return padded_b_;
}

Tensor LoraAdapters::hidden_of(std::size_t index, std::int64_t tokens) const {
  const std::int64_t r = settings_.rank;
  return rows_of(view_of(hidden_storage_, dtype_).slice(static_cast<std::int64_t>(index) * max_tokens_ * r, tokens * r),
                 tokens, r);
}

void LoraAdapters::forward(int layer, BlockLinear linear, Tensor out, Tensor inp) {
  forward_dropout_step_ = settings_.dropout > 0 ? dropout_step_ : std::nullopt;
  const std::int64_t N = inp.size(0);
  for (const std::size_t index : adapters_at(layer, linear)) {
    const LoraAdapter& adapter = adapters_[index];
    Tensor x = inp;
    if (forward_dropout_step_) {
      x = rows_of(dropped_input_, N, adapter.columns);
      ops::dropout_forward(x, inp, settings_.dropout, mask_seed(index));
    }
    // hidden = (α/r)·x·Aᵀ, saved: r values per token, the adapter's whole activation.
    const Tensor hidden = hidden_of(index, N);
    ops::matmul_forward(hidden, x, a_of(weights_, index), no_bias(dtype_));
    ops::scale(hidden, settings_.scaling());
    // out += hidden·Bᵀ. With B = 0 the term is zero and x + 0 = x in every dtype (x is already rounded), so the
    // adapted model computes the base's bits; the one exception would be an output of -0.0, which becomes +0.0.
    const Tensor term = rows_of(term_, N, out.size(1));
    ops::matmul_forward(term, hidden, full_b(index, b_of(weights_, index)), no_bias(dtype_));
    ops::accumulate(out, term);
  }
}

void LoraAdapters::backward(int layer, BlockLinear linear, Tensor dinp, Tensor dout, Tensor inp) {
  const std::int64_t N = inp.size(0), r = settings_.rank;
  for (const std::size_t index : adapters_at(layer, linear)) {
    const LoraAdapter& adapter = adapters_[index];
    const Tensor hidden = hidden_of(index, N);
    const Tensor b_gradient = b_of(gradients_, index);
    const bool padded = adapter.target->row_block >= 0;
    // The term's backward: dhidden = dout·B, dB += doutᵀ·hidden (for q, k, v: of the padded B, whose own rows are
    // the target's gradient and whose zero rows are thrown away).
    const Tensor hidden_gradient = rows_of(hidden_gradient_, N, r);
    ops::set_zero(hidden_gradient);
    if (padded) ops::set_zero(padded_b_gradient_);
    ops::matmul_backward(hidden_gradient, padded ? padded_b_gradient_ : b_gradient, no_bias(dtype_), dout, hidden,
                         full_b(index, b_of(weights_, index)));
    if (padded) {
      ops::accumulate(b_gradient.reshaped({b_gradient.numel()}),
                      padded_b_gradient_.slice(adapter.row_offset * r, b_gradient.numel()));
    }
    // hidden = (α/r)·x·Aᵀ: dA += (α/r)·dhiddenᵀ·x and dinp += (α/r)·dhidden·A, through the dropout mask if any.
    ops::scale(hidden_gradient, settings_.scaling());
    Tensor x = inp, x_gradient = dinp;
    if (forward_dropout_step_) {
      x = rows_of(dropped_input_, N, adapter.columns);
      ops::dropout_forward(x, inp, settings_.dropout, mask_seed(index));  // the forward's mask, regenerated
      x_gradient = rows_of(dropped_input_gradient_, N, adapter.columns);
      ops::set_zero(x_gradient);
    }
    ops::matmul_backward(x_gradient, a_of(gradients_, index), no_bias(dtype_), hidden_gradient, x,
                         a_of(weights_, index));
    if (forward_dropout_step_) ops::dropout_backward(dinp, x_gradient, settings_.dropout, mask_seed(index));
  }
}

}  // namespace ladder::stage10
