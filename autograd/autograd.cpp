#include "autograd/autograd.h"

#include <unordered_set>

namespace swiattn {

const char* op_name(OpId op) {
  switch (op) {
    case OpId::Leaf: return "leaf";
#define SWIATTN_OP_CASE(name, str) \
  case OpId::name: return str;
    SWIATTN_OPS(SWIATTN_OP_CASE)
#undef SWIATTN_OP_CASE
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Var

Var::Var(Tensor value, bool requires_grad, std::string name)
    : node_(std::make_shared<Node>()), value_(std::make_shared<Tensor>()) {
  if (requires_grad && value.dtype() != DType::F32 && value.dtype() != DType::F64 &&
      value.dtype() != DType::BF16)
    throw Error("Var: only float tensors can require a gradient, got " +
                std::string(dtype_name(value.dtype())) + " " + shape_str(value.shape()));
  node_->requires_grad = requires_grad;
  node_->name = std::move(name);
  set_value(std::move(value));
}

static Node& checked(const std::shared_ptr<Node>& node) {
  if (!node) throw Error("Var: use of an undefined Var");
  return *node;
}

const Tensor& Var::value() const {
  checked(node_);
  return *value_;
}
bool Var::requires_grad() const { return checked(node_).requires_grad; }
const std::string& Var::name() const { return checked(node_).name; }
OpId Var::op() const { return checked(node_).op; }
const Tensor& Var::grad() const { return checked(node_).grad; }
void Var::zero_grad() const { checked(node_).grad = Tensor(); }
Tensor& Var::grad_buffer() const { return checked(node_).grad_buffer(); }

void Var::set_value(Tensor value) const {
  Node& n = checked(node_);
  if (value_->defined() && value.shape() != value_->shape())  // a moved parameter keeps its shape
    throw Error("Var::set_value: " + (n.name.empty() ? std::string("a Var") : n.name) + " of shape " +
                shape_str(value_->shape()) + " cannot take a value of shape " + shape_str(value.shape()));
  n.shape = value.shape();
  n.dtype = value.dtype();
  n.device = value.device();
  n.grad = Tensor();
  *value_ = std::move(value);
}

Tensor& Node::grad_buffer() {
  if (!grad.defined()) grad = Tensor::zeros(shape, dtype, device);
  return grad;
}

GradSlot::GradSlot(const Var& x) : node_(x.node_) { checked(node_); }

Var make_op_result(OpId op, Tensor value, std::vector<Var> inputs,
                   std::function<void(const Tensor&)> backward) {
  Var out;
  out.node_ = std::make_shared<Node>();
  out.value_ = std::make_shared<Tensor>();
  out.node_->op = op;
  out.set_value(std::move(value));
  bool needs_grad = false;
  for (const Var& v : inputs) needs_grad = needs_grad || v.requires_grad();
  if (grad_enabled() && needs_grad && backward) {
    out.node_->requires_grad = true;
    for (const Var& v : inputs) out.node_->inputs.push_back(v.node_);  // nodes only: no values
    out.node_->backward = std::move(backward);
  }
  return out;
}

void Var::backward() const { backward(nullptr, GraphAfterBackward::Keep); }
void Var::backward(const std::function<void(const Node& leaf)>& leaf_ready) const {
  backward(leaf_ready, GraphAfterBackward::Keep);
}

static void check_not_released(const Node& node) {
  if (node.released)
    throw Error("backward: this graph's backward already ran with GraphAfterBackward::Release (its "
                "closures are gone); build the graph again for another backward");
}

void Var::backward(const std::function<void(const Node& leaf)>& leaf_ready, GraphAfterBackward after) const {
  Node& root = checked(node_);
  check_not_released(root);
  if (shape_numel(root.shape) != 1)
    throw Error("backward: the output must be a scalar, got shape " + shape_str(root.shape));
  if (!root.requires_grad)
    throw Error("backward: the output does not depend on any Var that requires a gradient");

  // Topological order by iterative depth-first search (inputs before the nodes that use them).
  std::vector<Node*> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<Node*, size_t>> stack{{node_.get(), 0}};
  visited.insert(node_.get());
  while (!stack.empty()) {
    auto& [node, next_input] = stack.back();
    if (next_input < node->inputs.size()) {
      Node* child = node->inputs[next_input++].get();
      check_not_released(*child);
      if (child->requires_grad && visited.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  // Gradients of intermediate nodes belong to this pass alone (a second backward() through the
  // same graph must not see the first one's); leaves keep accumulating until zero_grad().
  for (Node* node : order)
    if (node->backward) node->grad = Tensor();
  grad_buffer().fill(1.0);  // dL/dL = 1
  // Reverse topological order: every op that reads a node runs before the node is reached, so a
  // leaf's gradient is complete when the loop arrives at it.
  // With Release, a node's gradient and closure go once its backward has run: every op that adds
  // into that gradient ran before it (the order above), and its inputs stay alive through
  // node->inputs for the nodes still to come.
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    const bool interior = static_cast<bool>(node->backward);
    if (interior && node->grad.defined()) node->backward(node->grad);
    if (!interior && leaf_ready) leaf_ready(*node);
    if (interior && after == GraphAfterBackward::Release) {
      node->grad = Tensor();
      node->backward = nullptr;
      node->released = true;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient mode

static thread_local bool g_grad_enabled = true;

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

}  // namespace swiattn
