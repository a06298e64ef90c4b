#include "eval/cli.h"

#include "tensor/tensor.h"

namespace swiattn {

int run_eval_command(const std::vector<std::string>&) {
  throw Error("eval: not implemented yet (the evaluation harness issue)");
}

}  // namespace swiattn
