# Shared by the consumer projects: the strictest warnings, as errors, in the
# C++ standard the test asks for.
set(CMAKE_CXX_STANDARD ${CONSUMER_CXX_STANDARD})
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
add_compile_options(-Wall -Wextra -Wpedantic -Werror)
