# cmake -DIN=man/vmvault.toml.5 -DOUT=config.toml.example -P extract_example.cmake
# Writes the example configuration of vmvault.toml(5) (between its example-begin and
# example-end comments) as a plain TOML file: the one the configuration tests check
# and the one that is installed.
file(READ "${IN}" text)
set(begin_mark ".\\\" example-begin\n")
string(FIND "${text}" "${begin_mark}" begin)
string(FIND "${text}" ".\\\" example-end" end)
if(begin EQUAL -1 OR end EQUAL -1 OR end LESS begin)
  message(FATAL_ERROR "${IN} has no example-begin ... example-end block")
endif()
string(LENGTH "${begin_mark}" skip)
math(EXPR begin "${begin} + ${skip}")
math(EXPR length "${end} - ${begin}")
string(SUBSTRING "${text}" ${begin} ${length} example)
# Drop the fill requests and undo the roff escapes the example uses.
string(REGEX REPLACE "(^|\n)\\.(nf|fi)\n" "\\1" example "${example}")
string(REPLACE "\\-" "-" example "${example}")
string(REPLACE "\\e" "\\" example "${example}")
string(REPLACE "\\&" "" example "${example}")
file(WRITE "${OUT}" "${example}")
