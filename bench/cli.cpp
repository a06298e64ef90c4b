#include "bench/cli.h"

#include "tensor/tensor.h"

namespace swiattn {

int run_bench_command(const std::vector<std::string>&) {
  throw Error("bench: not implemented yet (the CUDA issue's benchmarks)");
}

}  // namespace swiattn
