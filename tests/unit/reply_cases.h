/*
 * reply_cases: real-world SMTP replies, as the servers send them (raw lines, CRLF), with the
 * phase they came in and what reply_judge must make of them. Shared by test_reply.c (the
 * judgement) and test_reply_rules.c (agreement with the shipped rules).
 *
 * Every row names where its text comes from. The sending IP in a quoted text is replaced by
 * 192.0.2.10 (RFC 5737) and addresses by example.com ones; the rest is as published.
 * Expected values are the decision reply.h documents, worked out from its rules, not taken
 * from the code's output.
 */
#ifndef IPWARM_TEST_REPLY_CASES_H
#define IPWARM_TEST_REPLY_CASES_H

#include <stdbool.h>

#include "ipwarm/reply.h"

struct reply_case {
    const char *name;
    enum reply_phase phase;
    bool relay;
    const char *raw;
    enum reply_fault fault;
    enum reply_outcome outcome;
    bool suppress, suspend, stop;
};

#define P_CONNECT  REPLY_PHASE_CONNECT
#define P_EHLO     REPLY_PHASE_EHLO
#define P_STARTTLS REPLY_PHASE_STARTTLS
#define P_AUTH     REPLY_PHASE_AUTH
#define P_MAIL     REPLY_PHASE_MAIL
#define P_RCPT     REPLY_PHASE_RCPT
#define P_DATA     REPLY_PHASE_DATA

/* Expectations, one per fault (and the two faces of RECIPIENT and PROVIDER). */
#define SENDER        REPLY_FAULT_SENDER, REPLY_BLOCKED, false, true, false
#define SETUP         REPLY_FAULT_SETUP, REPLY_FAILED, false, false, true
#define PROVIDER      REPLY_FAULT_PROVIDER, REPLY_DEFERRED, false, false, false
#define PROVIDER_5XX  REPLY_FAULT_PROVIDER, REPLY_BOUNCED, false, false, false
#define MESSAGE       REPLY_FAULT_MESSAGE, REPLY_BOUNCED, false, false, false
#define MESSAGE_4XX   REPLY_FAULT_MESSAGE, REPLY_DEFERRED, false, false, false
#define RCPT_SUPPRESS REPLY_FAULT_RECIPIENT, REPLY_BOUNCED, true, false, false
#define RCPT_KEEP     REPLY_FAULT_RECIPIENT, REPLY_BOUNCED, false, false, false
#define RCPT_4XX      REPLY_FAULT_RECIPIENT, REPLY_DEFERRED, false, false, false

static const struct reply_case reply_cases[] = {
    /* ---- block lists and reputation blocks: the sender, never the recipient ---- */

    /* ipwarm issue 16; Postfix's reject_rbl_client text, as in
     * https://www.simplefastwebsites.com/errors/email/smtp-554-5-7-1-client-host-blocked-spamhaus/
     * A block list at MAIL must not suppress the provider's whole list. */
    {"spamhaus at MAIL", P_MAIL, false,
     "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; "
     "https://www.spamhaus.org/query/ip/192.0.2.10\r\n",
     SENDER},
    /* The same refused at the greeting (issue 16;
     * https://help.kreativmedia.ch/fr/erreur-554-blocked lists it with dnsbl.sorbs.net). */
    {"spamhaus greeting", P_CONNECT, false,
     "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using dnsbl.sorbs.net\r\n",
     SENDER},
    /* Issue 16: "550 5.7.1 ... your IP address has been blocked". */
    {"your IP address has been blocked", P_RCPT, false,
     "550 5.7.1 Message rejected: your IP address has been blocked\r\n", SENDER},
    /* SpamCop through a shared host, https://blog.inframes.com/2013/08 */
    {"spamcop blacklist", P_RCPT, false,
     "554 5.7.1 Rejected - your IP address was found in a blacklist for sending spam. Please "
     "visit: http://spamcop.net/bl.shtml?192.0.2.10\r\n",
     SENDER},
    /* Microsoft S3150: the sandbox's blocklist mode and
     * https://github.com/ActiveCampaign/smtp-field-manual (data/codes/550.json, Outlook). */
    {"microsoft S3150", P_RCPT, false,
     "550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your "
     "Internet service provider since part of their network is on our block list (S3150). You "
     "can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. "
     "[BN1NAM02FT012.eop-nam02.prod.protection.outlook.com]\r\n",
     SENDER},
    /* Microsoft S3140 after DATA, https://github.com/hestiacp/hestiacp/issues/2901 */
    {"microsoft S3140 at DATA", P_DATA, false,
     "550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your "
     "Internet service provider since part of their network is on our block list (S3140). You "
     "can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. "
     "[DM6NAM12FT008.eop-nam12.prod.protection.outlook.com 2023-02-01T02:52:56.703Z "
     "08DB03E3F757F606]\r\n",
     SENDER},
    /* Exchange Online with Spamhaus, https://github.com/sendgrid/docs/issues/6275 */
    {"exchange online spamhaus", P_RCPT, false,
     "550 5.7.1 Service unavailable, Client host [192.0.2.10] blocked using Spamhaus. To request "
     "removal from this list see https://www.spamhaus.org/query/ip/192.0.2.10 (AS3130). "
     "[VE1EUR01FT062.eop-EUR01.prod.protection.outlook.com]\r\n",
     SENDER},
    /* Microsoft's banned sending IP, smtp-field-manual 550.json (Exchange Online 5.7.606). */
    {"microsoft 5.7.606", P_RCPT, false,
     "550 5.7.606 Access denied, banned sending IP [192.0.2.10]. To request removal from this "
     "list please visit https://sender.office.com/ and follow the directions. For more "
     "information please go to  http://go.microsoft.com/fwlink/?LinkID=526655 (AS16012609)\r\n",
     SENDER},
    /* Yahoo [BL21] after MAIL FROM, https://github.com/nmanousos/email-existence/pull/18 and
     * smtp-field-manual 553.json. The "550" in the URL must not read as a code. */
    {"yahoo BL21", P_MAIL, false,
     "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.10, because the ip is in "
     "Spamhaus's list; see http://postmaster.yahoo.com/550-bl23.html\r\n",
     SENDER},
    /* Yahoo [BL23] without a leading enhanced code, smtp-field-manual 553.json. */
    {"yahoo BL23", P_MAIL, false,
     "553 Mail from 192.0.2.10 not allowed - 5.7.1 [BL23] Connections not accepted from IP "
     "addresses on Spamhaus XBL; see http://postmaster.yahoo.com/errors/550-bl23.html\r\n",
     SENDER},
    /* Orange refusing to talk (Cloudmark),
       https://github.com/ActiveCampaign/smtp-field-manual/pull/60 */
    {"orange cloudmark greeting", P_CONNECT, false,
     "550 mwinf5c14 ME Adresse IP source bloquee pour incident de spam. Client host blocked for "
     "spamming issues. OFR006_102 Ref http://csi.cloudmark.com/reset-request/?ip=192.0.2.10 "
     "[102]\r\n",
     SENDER},
    /* Comcast's PTR requirement at the greeting, smtp-field-manual 554.json. */
    {"comcast PTR greeting", P_CONNECT, false,
     "554 resimta-po-01v.sys.comcast.net comcast 192.0.2.10 Comcast requires that all mail "
     "servers must have a PTR record with a valid Reverse DNS entry. Currently your mail server "
     "does not fill that requirement. For more information, refer to: "
     "http://postmaster.comcast.net/smtp-error-codes.php#554\r\n",
     SENDER},
    /* RFC 5321 section 3.1: a server that will not serve the client greets with 554. */
    {"554 no SMTP service here", P_CONNECT, false, "554 No SMTP service here\r\n", SENDER},
    /* A 4xx with block-list wording is the sender too: suspend, retry later. Postfix's
     * reject_rbl_client under soft_bounce, http://www.postfix.org/postconf.5.html#soft_bounce */
    {"4xx spamhaus", P_RCPT, false,
     "450 4.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org\r\n",
     SENDER},
    /* Gmail: "likely unsolicited mail" after DATA, smtp-field-manual 550.json (Google
     * 5.7.1-2). A judgement on our reputation, not on the recipient: never suppress for it. */
    {"gmail likely unsolicited", P_DATA, false,
     "550-5.7.1 [192.0.2.10      12] Our system has detected that this message is\r\n"
     "550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n"
     "550-5.7.1 this message has been blocked. Please visit\r\n"
     "550 5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError x1si - gsmtp\r\n",
     SENDER},
    /* Gmail's domain reputation block, smtp-field-manual 550.json (Google 5.7.1). */
    {"gmail very low reputation 5xx", P_DATA, false,
     "550 5.7.1 [192.0.2.10] Our system has detected that this message is likely suspicious due "
     "to the very low reputation of the sending domain. To best protect our users from spam, the "
     "message has been blocked. Please visit https://support.google.com/mail/answer/188131 for "
     "more information. - gsmtp\r\n",
     SENDER},
    /* AT&T, reverse DNS, smtp-field-manual 550.json. */
    {"att reverse dns", P_MAIL, false,
     "550 5.7.1 Connections not accepted from servers without a valid sender domain.flph829 Fix "
     "reverse DNS for 192.0.2.10\r\n",
     SENDER},
    /* Postfix reject_unknown_client_hostname (postconf(5)) as a 4xx. */
    {"postfix unknown client hostname", P_RCPT, false,
     "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.10]\r\n", SENDER},
    /* Exim's dnslists default message,
       https://www.exim.org/exim-html-current/doc/html/spec_html/ch-access_control_lists.html */
    {"exim black list", P_RCPT, false,
     "550 rejected because 192.0.2.10 is in a black list at zen.spamhaus.org\r\n", SENDER},

    /* ---- authentication policy ---- */

    /* Gmail 5.7.26,
       https://conetix.com.au/support/google-gmail-rejects-email-with-550-5-7-26-this-mail-is-unauthenticated/
     */
    {"gmail 5.7.26", P_DATA, false,
     "550-5.7.26 This mail is unauthenticated, which poses a security risk to the\r\n"
     "550-5.7.26 sender and Gmail users, and has been blocked. The sender must\r\n"
     "550 5.7.26 authenticate with at least one of SPF or DKIM. x1si - gsmtp\r\n",
     SENDER},
    /* Microsoft 5.7.515,
       https://support.microsoft.com/en-au/topic/fix-ndr-error-550-5-7-515-in-outlook-com-34cfe8f8-6fbf-457e-9e8b-9e4dbaf4e0ef
     */
    {"microsoft 5.7.515", P_DATA, false,
     "550 5.7.515 Access denied, sending domain example.com does not meet the required "
     "authentication level.\r\n",
     SENDER},
    /* Gmail 4.7.32 (smtp-field-manual 421.json): "rate limited", but no slower rate fixes a
     * DMARC alignment; a 4xx sender judgement: suspend, keep the recipient. */
    {"gmail 4.7.32 DMARC alignment", P_DATA, false,
     "421 4.7.32 This mail has been rate limited because there is no DMARC alignment\r\n", SENDER},
    /* Gmail's DMARC reject, smtp-field-manual 550.json (Google 5.7.1-3). */
    {"gmail DMARC policy", P_DATA, false,
     "550 5.7.1 Unauthenticated email from example.com is not accepted due to domain's DMARC "
     "policy. Please contact the administrator of example.com domain if this was a legitimate "
     "mail. Please visit https://support.google.com/mail/answer/2451690 to learn about DMARC "
     "initiative. - gsmtp\r\n",
     SENDER},

    /* ---- the provider pushing back ---- */

    /* Gmail 4.7.28, multi-line (the sandbox's and providers.md's). "your IP address" must not
     * read as a block list, nor "unsolicited" as a 5xx reputation block. */
    {"gmail 4.7.28 multi-line", P_MAIL, false,
     "421-4.7.28 [192.0.2.10      15] Our system has detected an\r\n"
     "421-4.7.28 unusual rate of unsolicited mail originating from your IP\r\n"
     "421-4.7.28 address. To protect our users from spam, mail sent from your\r\n"
     "421-4.7.28 IP address has been temporarily rate limited. Please visit\r\n"
     "421-4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError\r\n"
     "421 4.7.28 to review our Bulk Email Senders Guidelines. a1si - gsmtp\r\n",
     PROVIDER},
    /* Gmail 4.7.28 by DKIM domain,
     * https://www.suped.com/knowledge/email-deliverability/technical/what-causes-gmail-dkim-domain-rate-limiting-errors-and-how-are-they-related-to-spf
     * "DKIM" here names the identity being rate limited, not a failed signature. */
    {"gmail 4.7.28 DKIM domain", P_DATA, false,
     "421-4.7.28 [192.0.2.10      15] Our system has detected an unusual rate of\r\n"
     "421-4.7.28 unsolicited mail originating from your DKIM domain [example.com      15].\r\n"
     "421 4.7.28 To protect our users from spam, mail has been temporarily rate limited.\r\n",
     PROVIDER},
    /* Gmail's low domain reputation deferral, smtp-field-manual 421.json (the shipped
     * gmail-low-reputation rule throttles it). */
    {"gmail 4.7.0 low reputation", P_DATA, false,
     "421 4.7.0 [192.0.2.10] Our system has detected that this message is suspicious due to the "
     "very low reputation of the sending domain. To best protect our users from spam, the "
     "message has been blocked. Please visit https://support.google.com/mail/answer/188131 for "
     "more information. - gsmtp\r\n",
     PROVIDER},
    /* Microsoft 4.7.500, smtp-field-manual 451.json (Exchange Online). */
    {"microsoft 4.7.500", P_RCPT, false,
     "451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (AS77712344) "
     "[BN1NAM02FT012.eop-nam02.prod.protection.outlook.com]\r\n",
     PROVIDER},
    /* Microsoft 4.7.650, smtp-field-manual 451.json (Outlook). */
    {"microsoft 4.7.650", P_RCPT, false,
     "451 4.7.650 The mail server [192.0.2.10] has been temporarily rate limited due to IP "
     "reputation. For e-mail delivery information, see https://postmaster.live.com (S843) "
     "[BN1NAM02FT012.eop-nam02.prod.protection.outlook.com]\r\n",
     PROVIDER},
    /* Yahoo [TSS04], the sandbox's and https://smtpfieldmanual.com/provider/yahoo/421/4.7.0 */
    {"yahoo TSS04", P_MAIL, false,
     "421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume "
     "or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes\r\n",
     PROVIDER},
    /* Yahoo [TS03],
       http://help.yahoo.com/kb/index?page=content&y=PROD_MAIL_MOBILE&locale=en_US&id=SLN3436 */
    {"yahoo TS03", P_MAIL, false,
     "421 4.7.1 [TS03] All messages from 192.0.2.10 will be permanently deferred; Retrying will "
     "NOT succeed. See https://postmaster.yahooinc.com/error-codes\r\n",
     PROVIDER},
    /* Apple, smtp-field-manual 421.json. */
    {"apple too many errors", P_RCPT, false, "421 4.7.0 me.com Error: too many errors\r\n",
     PROVIDER},
    /* Exchange Online, smtp-field-manual 451.json. */
    {"exchange temporary server error", P_DATA, false,
     "451 4.7.0 Temporary server error. Please try again later. PRX4 NextHop: example.com "
     "[example.com]\r\n",
     PROVIDER},
    /* RFC 5321's 452 at MAIL: the server's storage, not a full mailbox. */
    {"452 insufficient system storage", P_MAIL, false, "452 4.3.1 Insufficient system storage\r\n",
     PROVIDER},
    /* QQ's sender frequency limit, smtp-field-manual 550.json: a 5xx that asks to slow down. */
    {"qq frequency limited", P_MAIL, false,
     "550 Sender frequency limited. "
     "http://service.exmail.qq.com/cgi-bin/help?subtype=1&&id=20022&&no=1000723\r\n",
     PROVIDER},
    /* A busy greeting, smtp-field-manual 421.json (Exchange Online 4.3.2). */
    {"exchange 421 greeting", P_CONNECT, false,
     "421 4.3.2 The maximum number of concurrent connections per resource forest has exceeded a "
     "limit, closing transmission channel. example.com. PRX8 [example.com]\r\n",
     PROVIDER},

    /* ---- our own set-up ---- */

    /* A wrong relay password, issue 16; Postfix/Dovecot SASL's text,
     * https://www.postfix.org/SASL_README.html */
    {"535 5.7.8 auth failed", P_AUTH, true,
     "535 5.7.8 Error: authentication failed: authentication failure\r\n", SETUP},
    /* Gmail's, https://support.google.com/a/answer/3726730 */
    {"gmail 535 bad credentials", P_AUTH, true,
     "535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
     "535 5.7.8  https://support.google.com/mail/?p=BadCredentials x1si - gsmtp\r\n",
     SETUP},
    /* Gmail, app password required (same page). */
    {"gmail 534 application password", P_AUTH, true,
     "534-5.7.9 Application-specific password required. For more information, go to\r\n"
     "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor x1si - gsmtp\r\n",
     SETUP},
    /* Microsoft 365 with SMTP AUTH off for the tenant,
     * https://learn.microsoft.com/en-us/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission
     */
    {"microsoft 535 5.7.139", P_AUTH, true,
     "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.\r\n",
     SETUP},
    /* A temporary AUTH failure is the server's (Postfix/Dovecot), not our password. */
    {"454 temporary auth failure", P_AUTH, true, "454 4.7.0 Temporary authentication failure\r\n",
     PROVIDER},
    /* Gmail and Postfix (smtpd_tls_auth_only / smtpd_enforce_tls), same Gmail page. */
    {"530 must issue STARTTLS", P_MAIL, false,
     "530 5.7.0 Must issue a STARTTLS command first. x1si - gsmtp\r\n", SETUP},
    /* Postfix reject_unauth_destination, smtp-field-manual 554.json (Proofpoint): through our
     * relay the relay refuses us; direct, the MX does not host the domain. */
    {"relay access denied via relay", P_RCPT, true,
     "554 5.7.1 <someone@example.org>: Relay access denied\r\n", SETUP},
    {"relay access denied direct", P_RCPT, false,
     "554 5.7.1 <someone@example.org>: Relay access denied\r\n", RCPT_KEEP},
    /* Microsoft 365 refusing anonymous mail,
       https://www.easy365manager.com/office-365-ndr-error-codes/ */
    {"microsoft 5.7.57 via relay", P_MAIL, true,
     "530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139 Authentication "
     "unsuccessful [AM6PR0732BE0065.eurprd07.prod.outlook.com]\r\n",
     SETUP},
    {"microsoft 5.7.57 direct", P_MAIL, false,
     "530 5.7.57 SMTP; Client was not authenticated to send anonymous mail during MAIL FROM "
     "[AM6PR0732BE0065.eurprd07.prod.outlook.com]\r\n",
     SENDER},
    /* Our return path refused: Sendmail/Proofpoint, smtp-field-manual 550.json. */
    {"5.1.8 sender domain does not exist", P_MAIL, false,
     "553 5.1.8 <bounces@example.com>... Domain of sender address bounces@example.com does not "
     "exist\r\n",
     SETUP},
    /* Postfix refuses the sender at RCPT (smtpd_delay_reject), smtp-field-manual 550.json. */
    {"5.1.8 sender rejected at RCPT", P_RCPT, false,
     "550 5.1.8 <bounces@example.com>: Sender address rejected: Domain not found\r\n", SETUP},
    /* The same for now only (a DNS lookup failed), smtp-field-manual 450.json (Infomaniak). */
    {"4.1.8 sender domain not found", P_RCPT, false,
     "450 4.1.8 <bounces@example.com>: Sender address rejected: Domain not found\r\n", MESSAGE_4XX},

    /* ---- the message ---- */

    /* Postfix message_size_limit, postconf(5). */
    {"552 5.3.4 size", P_DATA, false, "552 5.3.4 Message size exceeds fixed limit\r\n", MESSAGE},
    /* Gmail, smtp-field-manual 552.json. */
    {"gmail 552 5.2.3 size", P_DATA, false,
     "552-5.2.3 Your message exceeded Google's message size limits. Please visit\r\n"
     "552 5.2.3  https://support.google.com/mail/?p=MaxSizeError to view our size guidelines.\r\n",
     MESSAGE},
    /* Gmail, smtp-field-manual 552.json. */
    {"gmail illegal attachment", P_DATA, false,
     "552-5.7.0 Our system detected an illegal attachment on your message. Please\r\n"
     "552 5.7.0 visit http://mail.google.com/support/bin/answer.py?answer=6590 to review our "
     "attachment guidelines.\r\n",
     MESSAGE},
    /* Gmail's From header rule, smtp-field-manual 550.json (Google 5.7.1-4). */
    {"gmail missing From", P_DATA, false,
     "550 5.7.1 [192.0.2.10 14] Messages missing a valid address in From: header, or having no "
     "From: header, are not accepted. - gsmtp\r\n",
     MESSAGE},
    /* Mail.ru, smtp-field-manual 550.json. */
    {"mail.ru spam message", P_DATA, false,
     "550 spam message rejected. Please visit http://help.mail.ru/notspam-support/id or report "
     "details to abuse@corp.mail.ru. Error code: 1. ID: 1\r\n",
     MESSAGE},
    /* Apple iCloud, smtp-field-manual 554.json: a policy refusal of this message. */
    {"apple CS01", P_DATA, false,
     "554 5.7.1 [CS01] Message rejected due to local policy. Please visit "
     "https://support.apple.com/en-us/HT204137\r\n",
     MESSAGE},

    /* ---- the recipient ---- */

    /* Gmail, smtp-field-manual 550.json. */
    {"gmail 550 5.1.1", P_RCPT, false,
     "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
     "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
     "550-5.1.1 unnecessary spaces. Learn more at\r\n"
     "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser x1si - gsmtp\r\n",
     RCPT_SUPPRESS},
    /* Postfix, https://www.inmotionhosting.com/support/email/email-error-450 lists it. */
    {"postfix user unknown", P_RCPT, false,
     "550 5.1.1 <someone@example.com>: Recipient address rejected: User unknown in virtual "
     "mailbox table\r\n",
     RCPT_SUPPRESS},
    /* Gmail, smtp-field-manual 550.json. */
    {"gmail disabled", P_RCPT, false,
     "550 5.2.1 The email account that you tried to reach is disabled. Learn more at "
     "https://support.google.com/mail/?p=DisabledUser - gsmtp\r\n",
     RCPT_SUPPRESS},
    /* Free.fr: "blocked" here is the mailbox, by its x.2.1 (smtp-field-manual 550.json). */
    {"free mailbox blocked for inactivity", P_RCPT, false,
     "550 5.2.1 This mailbox has been blocked due to inactivity\r\n", RCPT_SUPPRESS},
    /* Yandex's misused policy code, smtp-field-manual 550.json. */
    {"yandex no such user", P_RCPT, false, "550 5.7.1 No such user!\r\n", RCPT_SUPPRESS},
    /* Gmail over quota, temporary and permanent (smtp-field-manual 452.json, 552.json). */
    {"gmail 452 4.2.2", P_RCPT, false,
     "452-4.2.2 The recipient's inbox is out of storage space and inbound mail\r\n"
     "452-4.2.2 cannot be delivered. Please try again later.\r\n"
     "452 4.2.2  https://support.google.com/mail/?p=OverQuotaTemp x1si - gsmtp\r\n",
     RCPT_4XX},
    {"gmail 552 5.2.2", P_RCPT, false,
     "552-5.2.2 The recipient's inbox is out of storage space.\r\n"
     "552 5.2.2  https://support.google.com/mail/?p=OverQuotaPerm x1si - gsmtp\r\n",
     RCPT_SUPPRESS},
    /* Gmail's per-recipient rate, 4xx and 5xx (smtp-field-manual 450.json, 550.json): the
     * recipient's, and no proof the address is bad. */
    {"gmail 450 4.2.1 receiving too fast", P_RCPT, false,
     "450-4.2.1 The user you are trying to contact is receiving mail too quickly.\r\n"
     "450 4.2.1 Please resend your message at a later time. x1si - gsmtp\r\n",
     RCPT_4XX},
    {"gmail 550 5.2.1 receiving rate", P_RCPT, false,
     "550 5.2.1 The user you are trying to contact is receiving mail at a rate that prevents "
     "additional messages from being delivered. For more information, please visit "
     "https://support.google.com/mail/?p=ReceivingRatePerm - gsmtp\r\n",
     RCPT_KEEP},
    /* Greylisting: postgrey (https://github.com/schweikert/postgrey/issues/84) and the 4.7.1
     * forms, one of them worded as a client refusal
     * (https://www.inmotionhosting.com/support/email/email-error-450). */
    {"postgrey", P_RCPT, false,
     "450 4.2.0 <someone@example.org>: Recipient address rejected: Greylisted, see "
     "http://postgrey.schweikert.ch/help/example.org.html\r\n",
     RCPT_4XX},
    {"greylisted 450 4.7.1", P_RCPT, false,
     "450 4.7.1 <someone@example.org>: Recipient address rejected: Greylisted for 5 minutes\r\n",
     RCPT_4XX},
    {"greylisted as client host rejected", P_RCPT, false,
     "450 4.7.1 <someone@example.org>: Client host rejected: Greylisted for 5 minutes\r\n",
     RCPT_4XX},
    /* Outlook.com's unknown recipient, smtp-field-manual 550.json (Outlook 5.5.0). */
    {"outlook 5.5.0 mailbox unavailable", P_RCPT, false,
     "550 5.5.0 Requested action not taken: mailbox unavailable. "
     "[BN1NAM02FT012.eop-nam12.prod.protection.outlook.com]\r\n",
     RCPT_SUPPRESS},
    /* GMX: the same words with a policy reason are not proof (smtp-field-manual 550.json). */
    {"gmx mailbox unavailable by policy", P_RCPT, false,
     "550 Requested action not taken: mailbox unavailable Reject due to policy restrictions.\r\n",
     RCPT_KEEP},
    /* Exchange Online's directory-based edge blocking, smtp-field-manual 550.json. */
    {"exchange 5.4.1 access denied", P_RCPT, false,
     "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
     "[BN1NAM02FT012.eop-nam02.prod.protection.outlook.com]\r\n",
     RCPT_KEEP},
    /* Yahoo after DATA, smtp-field-manual 554.json: one recipient per transaction. */
    {"yahoo 554 no account", P_DATA, false,
     "554 delivery error: dd This user doesn't have a yahoo.com account "
     "(someone@yahoo.com) [-5] - mta1010.mail.gq1.yahoo.com\r\n",
     RCPT_SUPPRESS},
};

#endif
