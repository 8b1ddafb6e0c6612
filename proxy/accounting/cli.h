// `keyfence analyze ...` (argv[1] == "analyze"): the exit code.
#pragma once

namespace keyfence::proxy::accounting {

int RunAnalyze(int argc, char** argv);

}  // namespace keyfence::proxy::accounting
