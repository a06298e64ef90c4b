// model/weights.cpp: loading a model's weights (model/weights.h).
#include "model/weights.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "model/safetensors.h"

namespace swiattn {

namespace {

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The first non-finite element of a float tensor on the CPU and how many there are; -1 when none.
std::pair<int64_t, int64_t> first_nonfinite_element(const Tensor& t) {
  return dispatch_float(t.dtype(), "checkpoint", [&](auto zero) {
    using T = decltype(zero);
    const T* p = t.data<T>();
    int64_t first = -1, count = 0;
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(p[i])) {
        if (first < 0) first = i;
        ++count;
      }
    return std::make_pair(first, count);
  });
}

// "3 more" style tail for messages that name the first of several problems.
std::string and_more(size_t count) {
  return count > 1 ? " (and " + std::to_string(count - 1) + " more)" : "";
}

}  // namespace

void refuse_nonfinite(const Tensor& t, const std::string& where, const std::string& name, const std::string& hint) {
  const auto [first, count] = first_nonfinite_element(t);
  if (first < 0) return;
  throw Error(where + "tensor " + quoted(name) + " holds " + std::to_string(count) + " non-finite value" +
              (count == 1 ? "" : "s") + " (NaN or infinity; the first at element " + std::to_string(first) +
              "): the checkpoint is broken, nothing was loaded" + hint);
}

LoadReport load_model_weights(const std::string& dir, Transformer& model,
                              const std::function<bool(const std::string&)>& may_be_missing,
                              const std::function<bool(const std::string&)>& may_be_ignored, bool allow_nonfinite) {
  const std::string path = (std::filesystem::path(dir) / "model.safetensors").string();
  const std::string where = "checkpoint " + path + ": ";
  const SafetensorsFile file = read_safetensors(path);

  // Pass 1: match every parameter with a tensor and check it; change nothing.
  LoadReport report;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (parameter's value, file tensor)
  std::vector<std::string> missing;
  std::set<std::string> parameter_names;
  for (const Var& p : model.parameters()) {
    parameter_names.insert(p.name());
    const auto it = file.tensors.find(p.name());
    if (it == file.tensors.end()) {
      if (may_be_missing && may_be_missing(p.name())) report.initialised.push_back(p.name());
      else missing.push_back(p.name() + " " + shape_str(p.shape()));
      continue;
    }
    const Tensor& stored = it->second;
    if (stored.shape() != p.shape())
      throw Error(where + "tensor " + quoted(p.name()) + " has shape " + shape_str(stored.shape()) +
                  " in the file but " + shape_str(p.shape()) + " in the model");
    if (stored.dtype() != DType::F32 && stored.dtype() != DType::F64)
      throw Error(where + "tensor " + quoted(p.name()) + " is " + dtype_name(stored.dtype()) +
                  " in the file; only float32 and float64 load into parameters");
    if (!allow_nonfinite)
      refuse_nonfinite(stored, where, p.name(),
                       " (to inspect it anyway: allow_nonfinite, swiattn generate / eval --allow-nonfinite)");
    copies.emplace_back(p.value(), stored);
    report.loaded.push_back(p.name());
  }
  if (!missing.empty())
    throw Error(where + "the model's parameter " + missing.front() + " is not in the file" +
                and_more(missing.size()));
  std::vector<std::string> unexpected;
  for (const std::string& name : file.names) {
    if (parameter_names.count(name)) continue;
    if (may_be_ignored && may_be_ignored(name)) report.ignored.push_back(name);
    else unexpected.push_back(name + " " + shape_str(file.tensors.at(name).shape()));
  }
  if (!unexpected.empty())
    throw Error(where + "tensor " + unexpected.front() + " is not a parameter of the model" +
                and_more(unexpected.size()) + " (was the checkpoint saved from another architecture?)");

  // Pass 2: every check passed; copy (Tensor handles share storage with the parameters).
  // A model on the device receives a device copy (converted there to the parameter's dtype).
  for (auto& [parameter, stored] : copies)
    parameter.copy_from(parameter.device() == Device::CPU ? stored : stored.to(parameter.device()));
  return report;
}

bool is_router_parameter(const std::string& name) {
  const auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return name.rfind("layers.", 0) == 0 &&
         (ends_with(".attn.router.weight") || ends_with(".attn.router.bias"));
}

}  // namespace swiattn
