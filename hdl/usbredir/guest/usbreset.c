/* usbreset DEVICE: a USB bus reset of one device from user space (USBDEVFS_RESET on its usbfs node,
 * e.g. /dev/bus/usb/001/002), which busybox has no applet for. Built static into the guest's
 * initramfs by server/twin/linux-usb-guest.ts. */
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: usbreset /dev/bus/usb/BBB/DDD\n");
        return 2;
    }
    int fd = open(argv[1], O_WRONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    if (ioctl(fd, USBDEVFS_RESET, 0) != 0) {
        perror("USBDEVFS_RESET");
        return 1;
    }
    close(fd);
    return 0;
}
