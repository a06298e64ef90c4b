// autograd/autograd.h: reverse-mode automatic differentiation on a DAG.
//
// A Var is a handle on a value tensor and on its node of the graph: a gradient tensor of the
// value's shape and (if it was produced by an op while gradients are enabled) the op's backward
// function and its inputs' nodes. Var::backward() on a scalar sorts the graph reachable from it
// topologically and runs each node's backward once, outputs before inputs.
//
// The graph holds nodes, not values: a value lives while some Var handle holds it or some
// backward closure saved it. So an intermediate the backward does not need (a cast's input, an
// add's operands) is freed as soon as the forward code drops its handle, and the graph's memory
// is what the closures saved. A closure therefore never captures an input Var (that would keep
// the input's value alive with the graph); it captures a GradSlot of the input, and the tensors
// its formula reads.
//
// The one accumulation rule: every backward ADDS into its inputs' gradients (+=). A Var used by
// several ops (a residual stream, a tied embedding, K and V read by many queries) therefore ends
// with the sum of all contributions, which is the chain rule for a node with several consumers.
// It also means parameter gradients keep accumulating across backward() calls until zero_grad().
//
// Each op lives in one autograd/ops_*.cpp file: its forward computation, and directly below it
// the backward closure, which restates the forward line it differentiates in a comment.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/op_list.h"
#include "tensor/tensor.h"

namespace swiattn {

struct Node;

// What Var::backward does with the graph it walks.
enum class GraphAfterBackward {
  Keep,     // intermediate gradients stay readable and the graph can run backward again
  Release,  // each intermediate node's gradient and backward closure (with the tensors the
            // closure saved) are dropped as soon as that node's backward has run, so the
            // step's memory falls while the backward runs (training: one backward per graph); a
            // second backward through the same graph is then an error. Values are kept.
};

class Var {
 public:
  Var() = default;
  // A leaf: a parameter (requires_grad = true) or a constant input.
  explicit Var(Tensor value, bool requires_grad = false, std::string name = "");

  bool defined() const { return node_ != nullptr; }
  const Tensor& value() const;
  // Replaces the value every handle of this Var sees (a parameter moved to another device);
  // drops the gradient. The shape must stay (an Error names the Var otherwise).
  void set_value(Tensor value) const;
  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  bool requires_grad() const;
  const std::string& name() const;
  OpId op() const;  // OpId::Leaf for leaves

  // The gradient dL/d(this); undefined until some backward reaches this Var.
  const Tensor& grad() const;
  // The gradient buffer, allocated as zeros on first use: what backward closures add into.
  Tensor& grad_buffer() const;
  void zero_grad() const;  // drops the gradient (it becomes undefined again)

  // Runs reverse-mode differentiation from this scalar, seeding dL/dL = 1.
  void backward() const;
  // The same, and leaf_ready(leaf) is called for each leaf that requires a gradient (each
  // parameter the scalar depends on) as soon as its gradient is complete: right after the last
  // backward that adds into it, while the ops nearer the inputs are still to run. Data-parallel
  // training starts the all-reduce of finished gradients there (train/data_parallel.h). The
  // leaf's grad may be undefined at that point (no backward reached it with a gradient).
  void backward(const std::function<void(const Node& leaf)>& leaf_ready) const;
  // Either of the above (leaf_ready may be empty), and what to do with the graph.
  void backward(const std::function<void(const Node& leaf)>& leaf_ready, GraphAfterBackward after) const;

  Node* node() const { return node_.get(); }

 private:
  friend Var make_op_result(OpId, Tensor, std::vector<Var>, std::function<void(const Tensor&)>);
  friend class GradSlot;
  std::shared_ptr<Node> node_;
  std::shared_ptr<Tensor> value_;  // shared by every handle of this Var, not by the graph
};

struct Node {
  Tensor grad;
  bool requires_grad = false;
  OpId op = OpId::Leaf;
  std::string name;
  Shape shape;                  // the value's shape, dtype and device: what the gradient is made like
  DType dtype = DType::F32;
  Device device = Device::CPU;
  std::vector<std::shared_ptr<Node>> inputs;         // the op's inputs' nodes (empty for leaves)
  std::function<void(const Tensor& dout)> backward;  // adds into the inputs' gradients
  bool released = false;  // its backward ran under GraphAfterBackward::Release (closure dropped)
  Tensor& grad_buffer();  // grad, allocated as zeros on first use
};

// What a backward closure keeps of an input x: where x's gradient goes, without x's value.
// Capture it by name, [=, dx = GradSlot(x)], and use dx in the body instead of x.
class GradSlot {
 public:
  explicit GradSlot(const Var& x);
  bool required() const { return node_->requires_grad; }
  Tensor& buffer() const { return node_->grad_buffer(); }  // x's gradient, zeros on first use
  // buffer(), or an undefined Tensor when x needs no gradient (kernel entries then skip it).
  Tensor if_required() const { return required() ? buffer() : Tensor(); }

 private:
  std::shared_ptr<Node> node_;
};

// Creates an op's output Var. If gradients are enabled and any input requires a gradient, the
// result records the inputs and the backward closure; otherwise it is a constant leaf.
Var make_op_result(OpId op, Tensor value, std::vector<Var> inputs,
                   std::function<void(const Tensor& dout)> backward);

// Gradient mode. Evaluation runs under NoGradGuard: ops then build no graph at all.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace swiattn
