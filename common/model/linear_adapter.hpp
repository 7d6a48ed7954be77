/// @file linear_adapter.hpp
/// @brief A hook beside each linear layer of a block, through which a stage adds a term of its own (LoRA).
#pragma once

#include "common/tensor.hpp"

namespace ladder {

/// The four linear layers of a transformer block, in forward order.
enum class BlockLinear {
  Qkv,                  ///< attn.qkv (3C, C): q, k and v are its row blocks [0,C), [C,2C), [2C,3C)
  AttentionProjection,  ///< attn.proj (C, C): the attention output projection ("o" in the LoRA paper)
  MlpFc,                ///< mlp.fc (4C, C)
  MlpProjection,        ///< mlp.proj (C, 4C)
};

/// Called by the GPT right after each block linear's forward and backward, like UnitHooks around units. The model
/// computes out = inp · Wᵀ + b and its gradients as always; adapters may add a term to out and the gradient of that
/// term to dinp (stage 10 adds (α/r)·B·A). The model knows nothing of what the term is.
class LinearAdapters {
 public:
  virtual ~LinearAdapters() = default;
  /// After out (N, OC) = inp (N, C) · Wᵀ + b of `linear` in block `layer`: may add to out.
  virtual void forward(int layer, BlockLinear linear, Tensor out, Tensor inp) = 0;
  /// After that layer's backward has accumulated into dinp (N, C) from dout (N, OC): may accumulate the added
  /// term's share into dinp, and the gradients of the adapter's own weights. `inp` is the forward's input.
  virtual void backward(int layer, BlockLinear linear, Tensor dinp, Tensor dout, Tensor inp) = 0;
};

}  // namespace ladder
