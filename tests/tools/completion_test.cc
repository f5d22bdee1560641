// Shell completion generated from the command line: every command and option is in
// both scripts, and bash and zsh complete with them for real.
#include "tools/completion.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/temp_dir.h"
#include "tools/app.h"

namespace vmvault::tools {
namespace {

using ::testing::HasSubstr;

// Every visible command path and the option names of each, straight from the app.
void Collect(const CLI::App& app, std::vector<std::string>& commands,
             std::vector<std::string>& options) {
  for (const CLI::Option* o : app.get_options()) {
    for (const std::string& l : o->get_lnames()) options.push_back("--" + l);
  }
  for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!s->get_name().empty()) {
      if (s->get_group().empty()) continue;  // hidden
      commands.push_back(s->get_name());
    }
    Collect(*s, commands, options);  // option groups have no name
  }
}

class CompletionTest : public ::testing::Test {
 protected:
  void SetUp() override { app_ = MakeApp(global_, run_); }

  // The output of a shell command line (stdout and stderr).
  static std::string Output(const std::string& cmd) {
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    for (size_t n; (n = ::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
    return out;
  }

  // Runs `script` in bash after sourcing the bash completion, returns stdout.
  std::string Bash(const std::string& script) {
    const std::string file = tmp_ / "vmvault.bash";
    std::ofstream(file) << BashCompletion(*app_);
    return Output("bash -c 'source " + file + "\n" + script + "'");
  }

  // What bash offers for the words of a command line (the last is being completed).
  std::string Complete(const std::string& words) {
    return Bash("COMP_WORDS=(" + words + "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _vmvault;"
                " echo \"${COMPREPLY[*]}\"");
  }

  GlobalOptions global_;
  std::function<Status()> run_;
  std::unique_ptr<CLI::App> app_;
  testing::TempDir tmp_;
};

TEST_F(CompletionTest, EveryCommandAndOptionIsInBothScripts) {
  std::vector<std::string> commands, options;
  Collect(*app_, commands, options);
  for (const Command& c : Commands()) {
    EXPECT_THAT(commands, ::testing::Contains(std::string(c.name)));
  }
  EXPECT_THAT(options, ::testing::Contains("--method"));  // inside ingest's option group
  const std::string bash = BashCompletion(*app_);
  const std::string zsh = ZshCompletion(*app_);
  // A whole word of a generated list: `echo "a b c"`.
  const auto word = [&bash](const std::string& w) {
    for (const char* before : {" ", "\""}) {
      for (const char* after : {" ", "\""}) {
        if (bash.find(before + w + after) != std::string::npos) return true;
      }
    }
    return false;
  };
  for (const std::string& c : commands) {
    EXPECT_TRUE(word(c)) << c;
    EXPECT_THAT(zsh, HasSubstr("'" + c + ":")) << c;
  }
  for (const std::string& o : options) {
    // A whole word of an option list in bash; a spec of its own in zsh.
    EXPECT_TRUE(word(o)) << o;
    EXPECT_THAT(zsh, HasSubstr(o)) << o;
  }
}

TEST_F(CompletionTest, BashCompletesCommandsOptionsAndValues) {
  EXPECT_EQ(Complete("vmvault pr"), "prune\n");
  EXPECT_EQ(Complete("vmvault comp"), "\n");  // hidden
  EXPECT_EQ(Complete("vmvault list --json --"),
            "--help --repo --quiet --verbose --log-file --syslog --log-level --json --yaml "
            "--human\n");
  EXPECT_EQ(Complete("vmvault verify --json --vm x --sa"), "--sample\n");
  std::string all;
  for (const Command& c : Commands()) all += (all.empty() ? "" : " ") + std::string(c.name);
  EXPECT_EQ(Complete("vmvault \"\""), all + "\n");
  EXPECT_EQ(Complete("vmvault config \"\""), "check test-alert\n");
  EXPECT_EQ(Complete("vmvault config check --con"), "--config\n");
  EXPECT_EQ(Complete("vmvault ingest --me"), "--method\n");
  EXPECT_EQ(Complete("vmvault ingest --method \"\""), "backup snapshot pause\n");
  EXPECT_EQ(Complete("vmvault ingest --file a.raw --tier w"), "warm\n");
  EXPECT_EQ(Complete("vmvault restore web01 2026 --format q"), "qcow2\n");
  EXPECT_EQ(Complete("vmvault mount --all"), "--allow-other\n");
  EXPECT_EQ(Complete("vmvault mount --layout \"\""), "vm staging\n");
  // Files for a file option, directories for a mountpoint.
  std::filesystem::create_directories(tmp_ / "mnt-here");
  std::ofstream(tmp_ / "disk-here.qcow2") << "x";
  EXPECT_EQ(Complete("vmvault ingest --file " + (tmp_ / "disk-h")), (tmp_ / "disk-here.qcow2") + "\n");
  EXPECT_EQ(Complete("vmvault mount --repo /r " + (tmp_ / "")), (tmp_ / "mnt-here") + "\n");
}

// Runs an interactive zsh (without any rc file) on a pseudo-terminal of its own
// (zsh/zpty), loads the completion from $1, types $2 and Tab, and prints each candidate
// zsh's completion system adds (compadd, wrapped to print them too), one a line.
constexpr char kZshCapture[] = R"zsh(
zmodload zsh/zpty || exit 2
zpty z zsh -f -i
zpty -w z "PROMPT=; RPROMPT="
zpty -w z "fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
# The markers are written split in two ('<re''ady>'), so the terminal's echo of what is
# typed never matches them.
zpty -w z 'compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits
  builtin compadd -A __hits "$@"
  (( $#__hits )) && print -rl -- "<h""it>"${^__hits}
  builtin compadd "$@"
}'
zpty -w z 'finish() { print -r -- "<e""nd>"; zle send-break }'
zpty -w z 'zle -N finish; bindkey "^Z" finish'
# Keys typed before the line editor runs may be lost: type them once it says it runs.
zpty -w z 'zle-line-init() { print -r -- "<z""le>" }; zle -N zle-line-init'
zpty -w z "print -r -- '<re''ady>'"
# zpty -r with a pattern reads until all it read matches, however the output is cut.
zpty -r z out '*<ready>*<zle>*' || exit 3
zpty -w -n z "$2"$'\t'
zpty -w -n z $'\C-z'
zpty -r z out '*<end>*' || exit 3
for line in ${(f)out}; do
  line=${line//$'\r'}
  [[ $line == *'<hit>'* ]] && print -r -- "${line#*<hit>}"
done
zpty -d z
)zsh";

class ZshCompletionTest : public CompletionTest {
 protected:
  void SetUp() override {
    CompletionTest::SetUp();
    std::ofstream(tmp_ / "_vmvault") << ZshCompletion(*app_);
    std::ofstream(tmp_ / "capture.zsh") << kZshCapture;
  }

  // What zsh offers at the end of `line`, space-separated in the order offered, each
  // once (zsh may add a match in more than one try, as it does for directories).
  std::string Complete(const std::string& line) {
    // `timeout`: a bound against a hang, not a timing assertion.
    const std::string out = Output("timeout 60 zsh -f " + (tmp_ / "capture.zsh") + " " +
                                   tmp_.path() + " '" + line + "'");
    std::string words;
    std::set<std::string> seen;
    for (size_t start = 0; start < out.size();) {
      size_t end = out.find('\n', start);
      if (end == std::string::npos) end = out.size();
      const std::string w = out.substr(start, end - start);
      if (!w.empty() && seen.insert(w).second) words += (words.empty() ? "" : " ") + w;
      start = end + 1;
    }
    return words;
  }
};

TEST_F(ZshCompletionTest, ScriptParses) {
  EXPECT_EQ(std::system(("zsh -n " + (tmp_ / "_vmvault")).c_str()), 0);
}

TEST_F(ZshCompletionTest, CompletesCommandsOptionsAndValues) {
  std::string all;
  for (const Command& c : Commands()) all += (all.empty() ? "" : " ") + std::string(c.name);
  EXPECT_EQ(Complete("vmvault "), all);
  EXPECT_EQ(Complete("vmvault pr"), "prune");
  EXPECT_EQ(Complete("vmvault config "), "check test-alert");
  EXPECT_EQ(Complete("vmvault list --js"), "--json");
  EXPECT_EQ(Complete("vmvault ingest --me"), "--method");
  EXPECT_EQ(Complete("vmvault ingest --method "), "backup snapshot pause");
  EXPECT_EQ(Complete("vmvault ingest --file a.raw --tier w"), "warm");
  EXPECT_EQ(Complete("vmvault mount --layout "), "vm staging");
  EXPECT_EQ(Complete("vmvault mount --views "), "all raw qcow2 vhdx vmdk part");
  // Files for a file option, directories for a mountpoint.
  std::filesystem::create_directories(tmp_ / "mnt-here");
  std::ofstream(tmp_ / "disk-here.qcow2") << "x";
  EXPECT_EQ(Complete("vmvault ingest --file " + (tmp_ / "disk-h")), "disk-here.qcow2");
  EXPECT_EQ(Complete("vmvault mount --repo /r " + (tmp_ / "mnt")), "mnt-here");
}

}  // namespace
}  // namespace vmvault::tools
