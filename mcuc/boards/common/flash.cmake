# flash.cmake: run by the firmware project's 'flash' target (cmake -P) to program the board with its
# flash tool. Looks the tool up when flashing, not when configuring, so installing it later works.
# MCUC_FLASH_ARGS separates arguments with '|'; {elf}, {hex} and {bin} name the firmware images.
if(NOT MCUC_FLASH_PROGRAM)
  message(FATAL_ERROR "mcuc: board '${MCUC_BOARD}' has no flash tool (it runs under QEMU: "
                      "use 'mcuc run OUTDIR --target qemu')")
endif()
find_program(MCUC_FLASH_PROGRAM_PATH ${MCUC_FLASH_PROGRAM} NO_CACHE)
if(NOT MCUC_FLASH_PROGRAM_PATH)
  message(FATAL_ERROR "mcuc: flashing board '${MCUC_BOARD}' needs '${MCUC_FLASH_PROGRAM}', which is not "
                      "installed or not on PATH. To flash: ${MCUC_FLASH_INSTALL}; then build the 'flash' "
                      "target again.")
endif()
string(REPLACE "|" ";" args "${MCUC_FLASH_ARGS}")
string(REPLACE "{elf}" "${MCUC_ELF}" args "${args}")
string(REPLACE "{hex}" "${MCUC_HEX}" args "${args}")
string(REPLACE "{bin}" "${MCUC_BIN}" args "${args}")
string(REPLACE ";" " " shown "${args}")
message(STATUS "mcuc: flashing ${MCUC_BOARD}: ${MCUC_FLASH_PROGRAM} ${shown}")
execute_process(COMMAND ${MCUC_FLASH_PROGRAM_PATH} ${args} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mcuc: ${MCUC_FLASH_PROGRAM} failed (exit ${rc}) while flashing board '${MCUC_BOARD}'; "
                      "is the board connected and powered?")
endif()
