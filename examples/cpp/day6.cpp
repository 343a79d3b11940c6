// Advent of Code 2024, day 6, part 2, from C++: the Python solver
// (interpool.demo.day6) runs on an interpool::Pool, one batch of candidate
// obstructions per task, for 1 to N workers, with the timings of each.
//
//   interpool_day6 [--size 130] [--seed 2024] [--grid FILE] [--workers N]
//                  [--repeat 1] [--check] [--python-path DIR]...
//
// Workers import the interpool Python package: pass the folder that holds it
// with --python-path (in a build tree: <build>/python), or set PYTHONPATH, or
// install interpool into the Python interpool was built against.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <interpool/interpool.hpp>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Options {
  int size = 130;
  int seed = 2024;
  std::string grid_file;
  std::size_t max_workers = 0;  // 0: usable CPUs
  int repeat = 1;
  bool check = false;
  std::vector<std::string> python_path;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "interpool_day6: " << problem << "\n"
            << "usage: interpool_day6 [--size N] [--seed S] [--grid FILE] [--workers N]\n"
            << "                      [--repeat R] [--check] [--python-path DIR]...\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    auto number = [&]() {
      std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 1) usage(arg + " needs a positive number, not '" + v + "'");
      return n;
    };
    if (arg == "--size") {
      o.size = static_cast<int>(number());
    } else if (arg == "--seed") {
      o.seed = static_cast<int>(number());
    } else if (arg == "--grid") {
      o.grid_file = value();
    } else if (arg == "--workers") {
      o.max_workers = static_cast<std::size_t>(number());
    } else if (arg == "--repeat") {
      o.repeat = static_cast<int>(number());
    } else if (arg == "--check") {
      o.check = true;
    } else if (arg == "--python-path") {
      o.python_path.push_back(value());
    } else {
      usage("unknown argument " + arg);
    }
  }
  return o;
}

// `per_worker` batches per worker, strided so that each mixes cells from the
// whole walk (a candidate's cost depends on where it is), as the Python study does.
std::vector<std::vector<long long>> batches(const std::vector<long long>& candidates,
                                            std::size_t workers, std::size_t per_worker = 8) {
  std::size_t n = std::max<std::size_t>(1, std::min(candidates.size(), workers * per_worker));
  std::vector<std::vector<long long>> out(n);
  for (std::size_t i = 0; i < candidates.size(); ++i) out[i % n].push_back(candidates[i]);
  return out;
}

struct Run {
  double startup = 0;  // Pool construction: every worker's interpreter exists
  double solve = 0;    // first submit to last result (includes each worker's grid parse)
  long long answer = 0;
};

// Part 2 on a pool of `workers`: the grid text goes once to each worker
// (interpool.demo.tasks.init_worker parses it there), then one task per batch.
Run solve(const std::string& text, const std::vector<long long>& candidates, std::size_t workers) {
  Run run;
  auto start = Clock::now();
  interpool::Pool pool{{
      .workers = workers,
      .initializers = {interpool::Call{{"interpool.demo.tasks", "init_worker"},
                                       interpool::Tuple{{interpool::Value(text)}}}},
  }};
  run.startup = seconds_since(start);
  start = Clock::now();
  for (const interpool::Value& count :
       pool.map("interpool.demo.tasks", "count_batch", batches(candidates, workers)))
    run.answer += count.as<long long>();
  run.solve = seconds_since(start);
  return run;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) usage("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  interpool::Runtime runtime({.module_paths = o.python_path});
  std::size_t max_workers = o.max_workers ? o.max_workers : interpool::usable_cpus();

  // The puzzle, prepared by the Python solver on one worker: the Grid it parses
  // is a Python object with no C++ form, so it comes back pickled and goes
  // back as it came.
  interpool::Pool helper{{.workers = 1}};
  std::string text, description;
  interpool::Value grid;
  std::vector<long long> candidates;
  long long part1 = 0;
  try {
    if (o.grid_file.empty()) {
      text =
          helper.submit("interpool.demo.day6", "generate", o.size, o.seed).get().as<std::string>();
      description = "generated " + std::to_string(o.size) + "x" + std::to_string(o.size) +
                    ", seed " + std::to_string(o.seed);
    } else {
      text = read_file(o.grid_file);
      description = o.grid_file;
    }
    grid = helper.submit("interpool.demo.day6", "parse", text).get();
    part1 = helper.submit("interpool.demo.day6", "part1", grid).get().as<long long>();
    candidates =
        helper.submit("interpool.demo.day6", "candidates", grid).get().as<std::vector<long long>>();
  } catch (const interpool::RemoteError& e) {
    std::cerr << "interpool_day6: " << e.what() << "\n";
    if (e.type_name() == "ModuleNotFoundError")
      std::cerr << "  workers cannot import the interpool package: pass --python-path DIR "
                   "(the folder holding interpool/, e.g. <build>/python) or set PYTHONPATH\n";
    return 1;
  }

  std::printf("AoC 2024 day 6 part 2 on interpool::Pool (C++), Python %s\n",
              interpool::Runtime::python_version().substr(0, 6).c_str());
  std::printf("grid: %s; part 1: %lld cells; part 2: %zu candidates\n", description.c_str(), part1,
              candidates.size());

  long long expected = -1;
  if (o.check) {
    auto start = Clock::now();
    expected = helper.submit("interpool.demo.day6", "part2", grid).get().as<long long>();
    std::printf("sequential (day6.part2 on one worker): %.3f s, answer %lld\n",
                seconds_since(start), expected);
  }

  std::printf("\n%-8s %10s %10s %9s %8s\n", "workers", "start-up", "solve", "speedup", "answer");
  double one_worker = 0;
  bool all_agree = true;
  for (std::size_t n = 1; n <= max_workers; ++n) {
    Run best;
    for (int r = 0; r < o.repeat; ++r) {
      Run run = solve(text, candidates, n);
      if (r == 0 || run.solve < best.solve) best = run;
    }
    if (n == 1) one_worker = best.solve;
    std::printf("%-8zu %8.1f ms %8.3f s %8.2fx %8lld\n", n, best.startup * 1e3, best.solve,
                one_worker / best.solve, best.answer);
    if (expected >= 0 && best.answer != expected) all_agree = false;
  }
  if (o.check) {
    std::printf("\n%s\n", all_agree ? "every answer matches the sequential solver"
                                    : "MISMATCH: an answer differs from the sequential solver");
    return all_agree ? 0 : 1;
  }
  return 0;
}
