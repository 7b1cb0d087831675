#ifndef CCURL_H
#define CCURL_H
int ccurl_placeholder(void);
#endif
