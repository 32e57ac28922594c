# firmware.cmake: the firmware ELF for an mcuc board, its .bin/.hex images, a size summary, and a
# 'flash' target. Included by the generated CMakeLists.txt when the project is configured with a
# board toolchain file (boards/<name>/toolchain.cmake), which sets the MCUC_BOARD_* variables.
set(MCUC_COMMON_DIR ${CMAKE_CURRENT_LIST_DIR})
# -O2 for firmware (CMake's GNU default for Release is -O3, which mostly grows code size).
set(CMAKE_C_FLAGS_RELEASE "-O2 -DNDEBUG")

add_executable(mcuc_firmware main.c ${MCUC_COMMON_DIR}/startup.c)
set_target_properties(mcuc_firmware PROPERTIES SUFFIX ".elf"
  LINK_DEPENDS "${MCUC_BOARD_DIR}/linker.ld;${MCUC_COMMON_DIR}/sections.ld")
target_link_libraries(mcuc_firmware PRIVATE mcuc_model)
target_compile_options(mcuc_firmware PRIVATE -Wall -Wextra -Werror)
target_link_options(mcuc_firmware PRIVATE
  -nostartfiles
  -T${MCUC_BOARD_DIR}/linker.ld -L${MCUC_COMMON_DIR}
  -Wl,--defsym=__mcuc_stack_bytes=${MCUC_BOARD_STACK_BYTES}
  -Wl,-Map=${CMAKE_CURRENT_BINARY_DIR}/mcuc_firmware.map)

if(MCUC_BOARD_SEMIHOSTING)
  # QEMU (or a debugger): stdio and files through semihosting; main.c is the file-driven runner.
  target_compile_definitions(mcuc_firmware PRIVATE MCUC_SEMIHOSTING)
  # Memory checks of the runner: guard blocks around the arena (sections.ld puts them next to it) and
  # the stack painted at reset; after the samples the runner prints the stack high-water mark.
  target_compile_definitions(mcuc_model PUBLIC MCUC_ARENA_GUARDS)
  target_compile_definitions(mcuc_firmware PRIVATE MCUC_STACK_PAINT=0xC5C5C5C5u)
  target_link_options(mcuc_firmware PRIVATE --specs=rdimon.specs)
else()
  # A real board on its own: main.c runs the model once on a zero input and then idles.
  target_compile_definitions(mcuc_firmware PRIVATE MCUC_FIRMWARE_STANDALONE)
  target_link_options(mcuc_firmware PRIVATE --specs=nano.specs --specs=nosys.specs)
endif()

# -DMCUC_PROFILE=ON: profile marks around every op (instruction counts per op under QEMU).
option(MCUC_PROFILE "call mcuc_profile_mark() around every op" OFF)
if(MCUC_PROFILE)
  target_compile_definitions(mcuc_model PUBLIC MCUC_PROFILE)
endif()
# -DMCUC_LINK_UNCHECKED=ON: keep the ELF even when it overflows the board's memories, so that an
# image that does not fit can still be measured (mcuc uses it to report by how much).
option(MCUC_LINK_UNCHECKED "write the ELF even if it does not fit the board" OFF)
if(MCUC_LINK_UNCHECKED)
  target_link_options(mcuc_firmware PRIVATE -Wl,--noinhibit-exec)
endif()

set(MCUC_FIRMWARE_ELF $<TARGET_FILE:mcuc_firmware>)
set(MCUC_FIRMWARE_HEX ${CMAKE_CURRENT_BINARY_DIR}/mcuc_firmware.hex)
set(MCUC_FIRMWARE_BIN ${CMAKE_CURRENT_BINARY_DIR}/mcuc_firmware.bin)
add_custom_command(TARGET mcuc_firmware POST_BUILD
  COMMAND ${CMAKE_OBJCOPY} -O ihex ${MCUC_FIRMWARE_ELF} ${MCUC_FIRMWARE_HEX}
  COMMAND ${MCUC_SIZE} ${MCUC_FIRMWARE_ELF}
  COMMENT "mcuc_firmware.hex and size summary for board ${MCUC_BOARD}"
  VERBATIM)
if(MCUC_BOARD_BINARY_IMAGE)
  add_custom_command(TARGET mcuc_firmware POST_BUILD
    COMMAND ${CMAKE_OBJCOPY} -O binary ${MCUC_FIRMWARE_ELF} ${MCUC_FIRMWARE_BIN}
    VERBATIM)
endif()

# 'flash' programs the board through mcuc itself (python -m mcuc.flash = 'mcuc flash'): the board's flash
# tool and probe handling live in one place. -DMCUC_PROBE=ID selects a probe by its serial number.
set(MCUC_PROBE "" CACHE STRING "serial number / unique id of the debug probe the flash target uses")
set(mcuc_probe_args "")
if(MCUC_PROBE)
  set(mcuc_probe_args --probe ${MCUC_PROBE})
endif()
add_custom_target(flash
  COMMAND ${MCUC_PYTHON} -m mcuc.flash ${CMAKE_SOURCE_DIR} --elf ${MCUC_FIRMWARE_ELF} --board ${MCUC_BOARD}
          ${mcuc_probe_args}
  DEPENDS mcuc_firmware
  USES_TERMINAL
  VERBATIM)
